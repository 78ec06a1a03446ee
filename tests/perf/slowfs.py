"""An emulated Google Drive mount for the benchmark: a FUSE passthrough, throttled.

    python tests/perf/slowfs.py SOURCE MOUNTPOINT [--mbps 30] [--open-latency 0.1]

Mounts SOURCE at MOUNTPOINT (in the foreground; ``fusermount3 -u MOUNTPOINT``
ends it) with what makes Drive's mount slow for the wheel store:

- every open (and create) waits ``--open-latency`` seconds: Drive's FUSE
  mount answers each file's first access over the network;
- reads and writes are paced to ``--mbps`` megabytes per second in all
  (one budget shared by every open file, as one network link);
- no hardlinks (``link`` fails with EPERM), as on Drive.

Why these figures are the defaults: PLATFORM-FACTS reports tens of MB/s for
large files read from Colab's Drive mount (a 39 GB copy in over 10 minutes is
at most 65 MB/s) and slow per-file access; 30 MB/s and 0.1 s per open sit in
that range. Colab's downloads from package indexes are often well over
100 MB/s, which is what makes a store on Drive able to lose against the index.

Needs ``mfusepy`` (PyPI) and libfuse3 with ``fusermount3`` (Debian: fuse3).
"""

from __future__ import annotations

import argparse
import errno
import os
import threading
import time


def main() -> int:
    import mfusepy as fuse

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source")
    parser.add_argument("mountpoint")
    parser.add_argument("--mbps", type=float, default=30.0, help="MB/s for all reads and writes")
    parser.add_argument("--open-latency", type=float, default=0.1, help="seconds per open")
    args = parser.parse_args()
    root = os.path.realpath(args.source)
    rate = args.mbps * 1e6

    class Pacer:
        """One link: bytes go through at ``rate`` bytes per second, whoever asks."""

        def __init__(self) -> None:
            self.lock = threading.Lock()
            self.free_at = time.monotonic()

        def take(self, size: int) -> None:
            with self.lock:
                start = max(self.free_at, time.monotonic())
                self.free_at = start + size / rate
                until = self.free_at
            delay = until - time.monotonic()
            if delay > 0:
                time.sleep(delay)

    pace = Pacer()

    class Slow(fuse.Operations):
        use_ns = True  # times in nanoseconds, as os.utime(ns=...) takes them

        def _full(self, path: str) -> str:
            return os.path.join(root, path.lstrip("/"))

        def getattr(self, path, fh=None):
            st = os.lstat(self._full(path))
            return {key: getattr(st, key) for key in (
                "st_atime", "st_ctime", "st_gid", "st_mode", "st_mtime", "st_nlink", "st_size",
                "st_uid")}

        def readdir(self, path, fh):
            return [".", "..", *os.listdir(self._full(path))]

        def access(self, path, amode):
            if not os.access(self._full(path), amode):
                raise fuse.FuseOSError(errno.EACCES)
            return 0

        def open(self, path, flags):
            time.sleep(args.open_latency)
            return os.open(self._full(path), flags)

        def create(self, path, mode, fi=None):
            time.sleep(args.open_latency)
            return os.open(self._full(path), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)

        def read(self, path, size, offset, fh):
            data = os.pread(fh, size, offset)
            pace.take(len(data))
            return data

        def write(self, path, data, offset, fh):
            pace.take(len(data))
            return os.pwrite(fh, data, offset)

        def truncate(self, path, length, fh=None):
            with open(self._full(path), "r+b") as handle:
                handle.truncate(length)
            return 0

        def flush(self, path, fh):
            return 0

        def fsync(self, path, datasync, fh):
            os.fsync(fh)
            return 0

        def release(self, path, fh):
            os.close(fh)
            return 0

        def mkdir(self, path, mode):
            os.mkdir(self._full(path), mode)
            return 0

        def rmdir(self, path):
            os.rmdir(self._full(path))
            return 0

        def unlink(self, path):
            os.unlink(self._full(path))
            return 0

        def rename(self, old, new):
            os.replace(self._full(old), self._full(new))
            return 0

        def link(self, target, source):
            raise fuse.FuseOSError(errno.EPERM)  # Drive has no hardlinks

        def chmod(self, path, mode):
            os.chmod(self._full(path), mode)
            return 0

        def utimens(self, path, times=None):
            os.utime(self._full(path), ns=times)
            return 0

        def statfs(self, path):
            st = os.statvfs(self._full(path))
            return {key: getattr(st, key) for key in (
                "f_bavail", "f_bfree", "f_blocks", "f_bsize", "f_favail", "f_ffree", "f_files",
                "f_flag", "f_frsize", "f_namemax")}

    fuse.FUSE(Slow(), args.mountpoint, foreground=True, nothreads=False, fsname="slowdrive")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
