"""Colab-specific Google Drive integration, faked for tests.

Behaves like colabtools' ``google/colab/drive.py`` as seen from Python:

- outside a Colab VM (``/var/colab/hostname`` missing) ``mount`` raises the
  real NotImplementedError;
- ``<mountpoint>/My Drive`` present: prints "Drive already mounted at ..." and
  returns;
- a mountpoint with a space, a symlink, a non-empty folder, a file or a
  missing parent folder: the real ValueError messages;
- otherwise "mounting" makes ``<mountpoint>/MyDrive`` (what current runtimes
  show) a link to the folder standing for the user's Drive, or an empty
  folder, and prints "Mounted at <mountpoint>". Mounting again a mountpoint
  this module mounted works, as the real one unmounts first.

Environment of the fake:
  FAKE_COLAB_HOSTNAME        the file standing for /var/colab/hostname
                             (default: that path)
  FAKE_COLAB_MOUNT_FAILURES  the first N mount() calls of this module fail with
                             Drive's "timeout during initial read of root folder"
  FAKE_COLAB_MOUNT_AUTH      "denied": mount() raises the MessageError the page
                             sends when the user refuses access
  FAKE_COLAB_DRIVE           the folder standing for the user's Drive (its files
                             outlive the "VM"); unset: an empty Drive
  FAKE_COLAB_LOG             a file; each mount() call appends "mount <mountpoint>"
"""

import os as _os

from google.colab import _message

__all__ = ['flush_and_unmount', 'mount']

_attempts = 0
_mounted = set()


def _log(line):
  path = _os.environ.get('FAKE_COLAB_LOG')
  if path:
    with open(path, 'a') as handle:
      handle.write(line + '\n')


def _on_colab_vm():
  return _os.path.exists(_os.environ.get('FAKE_COLAB_HOSTNAME', '/var/colab/hostname'))


def flush_and_unmount(timeout_ms=24 * 60 * 60 * 1000):
  """Unmount Google Drive and flush any outstanding writes to it."""
  _log('flush_and_unmount')
  if not _mounted:
    print('Drive not mounted, so nothing to flush and unmount.')
    return
  _mounted.clear()


def mount(mountpoint, force_remount=False, timeout_ms=120000, readonly=False):
  """Mount your Google Drive at the specified mountpoint path."""
  return _mount(
      mountpoint,
      force_remount=force_remount,
      timeout_ms=timeout_ms,
      readonly=readonly)


def _mount(mountpoint, force_remount=False, timeout_ms=120000, ephemeral=False,
           readonly=False):
  """Internal helper to mount Google Drive."""
  global _attempts
  _log('mount ' + str(mountpoint))
  if not _on_colab_vm():
    raise NotImplementedError(
        'Mounting drive is unsupported in this environment. Use PyDrive2'
        ' instead. See examples at'
        ' https://colab.research.google.com/notebooks/io.ipynb#scrollTo=7taylj9wpsA2.')
  if ' ' in mountpoint:
    raise ValueError('Mountpoint must not contain a space.')

  mountpoint = _os.path.expanduser(mountpoint)
  # If we've already mounted drive at the specified mountpoint, exit now.
  already_mounted = _os.path.isdir(_os.path.join(mountpoint, 'My Drive'))
  if not force_remount and already_mounted:
    print(
        'Drive already mounted at {mnt}; to attempt to forcibly remount, '
        'call drive.mount("{mnt}", force_remount=True).'.format(mnt=mountpoint))
    return

  if _os.environ.get('FAKE_COLAB_MOUNT_AUTH') == 'denied':
    raise _message.MessageError('Error: credential propagation was unsuccessful')

  # The real module unmounts a previous mount here, so its files do not count.
  remount = _os.path.realpath(mountpoint) in _mounted
  if _os.path.islink(mountpoint):
    raise ValueError('Mountpoint must not be a symlink')
  if _os.path.isdir(mountpoint) and _os.listdir(mountpoint) and not remount:
    raise ValueError('Mountpoint must not already contain files')
  if not _os.path.isdir(mountpoint) and _os.path.exists(mountpoint):
    raise ValueError('Mountpoint must either be a directory or not exist')
  normed = _os.path.normpath(mountpoint)
  if '/' in normed and not _os.path.exists(_os.path.dirname(normed)):
    raise ValueError('Mountpoint must be in a directory that exists')

  _attempts += 1
  if _attempts <= int(_os.environ.get('FAKE_COLAB_MOUNT_FAILURES', '0')):
    raise ValueError(
        'mount failed: timeout during initial read of root folder; for more info: '
        'https://research.google.com/colaboratory/faq.html#drive-timeout')

  folder = _os.path.join(mountpoint, 'MyDrive')
  drive = _os.environ.get('FAKE_COLAB_DRIVE')
  _os.makedirs(mountpoint, exist_ok=True)
  if drive and not _os.path.lexists(folder):
    _os.symlink(drive, folder)
  else:
    _os.makedirs(folder, exist_ok=True)
  _mounted.add(_os.path.realpath(mountpoint))
  print('Mounted at {}'.format(mountpoint))
