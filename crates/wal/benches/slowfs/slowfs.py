#!/usr/bin/env python3
"""A disk whose fsync is slow, for `cargo xtask bench wal --fsync-delay-ms N`.

A passthrough FUSE filesystem (fusepy) over ROOT, mounted at MNT, whose fsync and
fdatasync sleep DELAY seconds before syncing the real file: both WAL implementations then
pay the same fixed flush latency, as on a disk without a fast write cache.

    python3 slowfs.py ROOT MNT DELAY_SECONDS     (foreground; unmount with fusermount -u MNT)
"""
import os, sys, time, errno
from fuse import FUSE, FuseOSError, Operations

class SlowFS(Operations):
    def __init__(self, root, delay):
        self.root, self.delay = root, delay
    def _p(self, path): return os.path.join(self.root, path.lstrip('/'))
    def access(self, path, mode):
        if not os.access(self._p(path), mode): raise FuseOSError(errno.EACCES)
    def chmod(self, path, mode): return os.chmod(self._p(path), mode)
    def chown(self, path, uid, gid): return os.chown(self._p(path), uid, gid)
    def getattr(self, path, fh=None):
        st = os.lstat(self._p(path))
        return {k: getattr(st, k) for k in ('st_atime','st_ctime','st_gid','st_mode','st_mtime','st_nlink','st_size','st_uid')}
    def readdir(self, path, fh): return ['.', '..'] + os.listdir(self._p(path))
    def rmdir(self, path): return os.rmdir(self._p(path))
    def mkdir(self, path, mode): return os.mkdir(self._p(path), mode)
    def statfs(self, path):
        st = os.statvfs(self._p(path))
        return {k: getattr(st, k) for k in ('f_bavail','f_bfree','f_blocks','f_bsize','f_favail','f_ffree','f_files','f_flag','f_frsize','f_namemax')}
    def unlink(self, path): return os.unlink(self._p(path))
    def rename(self, old, new): return os.rename(self._p(old), self._p(new))
    def utimens(self, path, times=None): return os.utime(self._p(path), times)
    def open(self, path, flags): return os.open(self._p(path), flags)
    def create(self, path, mode, fi=None): return os.open(self._p(path), os.O_WRONLY | os.O_CREAT, mode)
    def read(self, path, length, offset, fh): return os.pread(fh, length, offset)
    def write(self, path, buf, offset, fh): return os.pwrite(fh, buf, offset)
    def truncate(self, path, length, fh=None):
        with open(self._p(path), 'r+') as f: f.truncate(length)
    def flush(self, path, fh): return 0
    def release(self, path, fh): return os.close(fh)
    def fsync(self, path, datasync, fh):
        time.sleep(self.delay)
        if datasync: os.fdatasync(fh)
        else: os.fsync(fh)
        return 0
    def fsyncdir(self, path, datasync, fh):
        time.sleep(self.delay)
        return 0

if __name__ == '__main__':
    root, mnt, delay = sys.argv[1], sys.argv[2], float(sys.argv[3])
    # hard_remove: unlink open files at once (no .fuse_hidden leftovers, which etcd's Create
    # would find in its fresh directory).
    FUSE(SlowFS(root, delay), mnt, nothreads=False, foreground=True, hard_remove=True)
