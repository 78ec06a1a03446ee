"""A stand-in for Colab's ``google.colab`` package, for tests on machines that are not Colab.

Only the parts notebook-bootstrap uses exist: ``drive`` (mount,
flush_and_unmount), ``userdata`` (get and its exceptions), ``errors`` and
``_message.MessageError``. Names, signatures, messages and failure modes follow
googlecolab/colabtools; each module says which environment variables steer it.
Tests put ``tests/fakes`` first on ``sys.path``. ``google`` is a namespace
package here (no ``__init__.py``), as it is on Colab.
"""
