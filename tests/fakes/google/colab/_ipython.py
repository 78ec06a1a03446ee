"""IPython compatibility layer, as in colabtools.

Unchanged: it is what fails in a plain process.
"""

import IPython


def get_ipython():
  return IPython.get_ipython()


def get_kernel():
  return get_ipython().kernel


def get_kernelapp():
  return get_ipython().kernel.parent


def in_ipython():
  """Return True iff we're in a IPython like environment."""
  ip = IPython.get_ipython()
  return hasattr(ip, 'kernel')
