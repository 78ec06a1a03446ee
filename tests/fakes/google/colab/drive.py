"""Colab-specific Google Drive integration, faked for tests.

Behaves like colabtools' ``google/colab/drive.py`` as seen from Python, in
the same order:

- outside a Colab VM (``/var/colab/hostname`` missing) ``mount`` raises the
  real NotImplementedError, and so it does on Colab Enterprise
  (``VERTEX_PRODUCT=COLAB_ENTERPRISE``);
- it asks the page for access (``_message.blocking_request('request_auth')``):
  in a plain process that is the real AttributeError ('NoneType' object has
  no attribute 'kernel'); a refusal is the page's MessageError; no answer
  within ``timeout_ms`` (a kernel without the page, or a dialog answered late)
  ends, as on Colab, in ``ValueError('mount failed')``;
- ``<mountpoint>/My Drive`` present: prints "Drive already mounted at ..." and
  returns;
- it unmounts whatever is mounted at the mountpoint, then refuses a symlink,
  a non-empty folder, a file or a missing parent folder with the real
  ValueError messages;
- otherwise it really mounts a file system at the mountpoint (a tmpfs: the
  tests run as root) whose ``MyDrive`` (what current runtimes show) links to
  the folder standing for the user's Drive, and prints "Mounted at
  <mountpoint>".

Environment of the fake (and see ``_message`` for the page):
  FAKE_COLAB_HOSTNAME        the file standing for /var/colab/hostname
                             (default: that path)
  FAKE_COLAB_MOUNT_FAILURES  the first N mounts of this process fail with
                             Drive's "timeout during initial read of root folder"
  FAKE_COLAB_DRIVE           the folder standing for the user's Drive (its files
                             outlive the "VM"); unset: an empty Drive
  FAKE_COLAB_LOG             a file; each mount() call appends "mount <mountpoint>"
"""

import os as _os
import subprocess as _subprocess

from google.colab import _message

__all__ = ['flush_and_unmount', 'mount']

_attempts = 0


def _log(line):
  path = _os.environ.get('FAKE_COLAB_LOG')
  if path:
    with open(path, 'a') as handle:
      handle.write(line + '\n')


def _on_colab_vm():
  return _os.path.exists(_os.environ.get('FAKE_COLAB_HOSTNAME', '/var/colab/hostname'))


def _drive_mounts():
  with open('/proc/self/mounts') as handle:
    return [line.split()[1] for line in handle if line.split()[0] == 'fake-drive']


def flush_and_unmount(timeout_ms=24 * 60 * 60 * 1000):
  """Unmount Google Drive and flush any outstanding writes to it."""
  _log('flush_and_unmount')
  mounts = _drive_mounts()
  if not mounts:
    print('Drive not mounted, so nothing to flush and unmount.')
    return
  for mountpoint in mounts:
    _subprocess.run(['umount', mountpoint], check=True)


def mount(mountpoint, force_remount=False, timeout_ms=120000, readonly=False):
  """Mount your Google Drive at the specified mountpoint path."""
  return _mount(
      mountpoint,
      force_remount=force_remount,
      timeout_ms=timeout_ms,
      ephemeral=True,
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
  if _os.environ.get('VERTEX_PRODUCT') == 'COLAB_ENTERPRISE':
    raise NotImplementedError(
        'google.colab.drive.mount is not supported in Colab Enterprise.')
  authorised = None
  if ephemeral:
    authorised = _message.blocking_request(
        'request_auth',
        request={'authType': 'dfs_ephemeral'},
        timeout_sec=int(timeout_ms / 1000),
    )

  mountpoint = _os.path.expanduser(mountpoint)
  # If we've already mounted drive at the specified mountpoint, exit now.
  already_mounted = _os.path.isdir(_os.path.join(mountpoint, 'My Drive'))
  if not force_remount and already_mounted:
    print(
        f'Drive already mounted at {mountpoint}; to attempt to forcibly '
        f'remount, call drive.mount("{mountpoint}", force_remount=True).')
    return

  # The real one unmounts a previous mount here ("umount -f {mountpoint}").
  if _os.path.ismount(mountpoint):
    _subprocess.run(['umount', mountpoint], check=False)
  if _os.path.islink(mountpoint):
    raise ValueError('Mountpoint must not be a symlink')
  if _os.path.isdir(mountpoint) and _os.listdir(mountpoint):
    raise ValueError('Mountpoint must not already contain files')
  if not _os.path.isdir(mountpoint) and _os.path.exists(mountpoint):
    raise ValueError('Mountpoint must either be a directory or not exist')
  normed = _os.path.normpath(mountpoint)
  if '/' in normed and not _os.path.exists(_os.path.dirname(normed)):
    raise ValueError('Mountpoint must be in a directory that exists')

  if ephemeral and authorised is None:
    # Without the page's go-ahead the drive binary gets no credentials and exits.
    raise ValueError('mount failed')
  _attempts += 1
  if _attempts <= int(_os.environ.get('FAKE_COLAB_MOUNT_FAILURES', '0')):
    raise ValueError(
        'mount failed: timeout during initial read of root folder; for more info: '
        'https://research.google.com/colaboratory/faq.html#drive-timeout')

  _os.makedirs(mountpoint, exist_ok=True)
  _subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=16m', 'fake-drive', mountpoint],
                  check=True)
  folder = _os.path.join(mountpoint, 'MyDrive')
  drive = _os.environ.get('FAKE_COLAB_DRIVE')
  if drive:
    _os.symlink(drive, folder)
  else:
    _os.makedirs(folder)
  print(f'Mounted at {mountpoint}')
