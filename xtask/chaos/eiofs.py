#!/usr/bin/env python3
"""A disk that fails, for `cargo xtask chaos` (faults `eio`): the passthrough FUSE filesystem
of crates/wal/benches/slowfs (no fsync delay) over ROOT, mounted at MNT, whose write and
fsync fail with EIO once a byte budget is spent.

    python3 eiofs.py ROOT MNT CONTROL     (foreground; unmount with umount MNT)

CONTROL is a file holding the budget: -1 = no fault; N = writes after the next N bytes
(counted from when the file last changed) fail with EIO, and so does every fsync after the
first failed write, until the budget changes.
"""
import errno, os, sys, threading

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', '..', 'crates', 'wal', 'benches', 'slowfs'))
from fuse import FUSE, FuseOSError  # noqa: E402
from slowfs import SlowFS  # noqa: E402


class EioFS(SlowFS):
    def __init__(self, root, control):
        super().__init__(root, 0.0)
        self.control = control
        self.mu = threading.Lock()  # not `lock`: that is a FUSE operation
        self.seen = None   # (mtime_ns, budget) of the control file last read
        self.spent = 0
        self.tripped = False

    def _budget(self):
        """The current budget; a changed control file restarts the count."""
        try:
            st = os.stat(self.control)
            key = st.st_ino, st.st_mtime_ns, st.st_size
            if self.seen is None or self.seen[0] != key:
                with open(self.control) as f:
                    budget = int(f.read().strip() or '-1')
                self.seen = (key, budget)
                self.spent, self.tripped = 0, False
            return self.seen[1]
        except (OSError, ValueError):
            return -1

    def link(self, target, source):
        # fusepy's argument order: `ln source target`.
        return os.link(self._p(source), self._p(target))

    def write(self, path, buf, offset, fh):
        with self.mu:
            budget = self._budget()
            if budget >= 0 and (self.tripped or self.spent + len(buf) > budget):
                self.tripped = True
                raise FuseOSError(errno.EIO)
            self.spent += len(buf)
        return os.pwrite(fh, buf, offset)

    def fsync(self, path, datasync, fh):
        with self.mu:
            if self._budget() >= 0 and self.tripped:
                raise FuseOSError(errno.EIO)
        return super().fsync(path, datasync, fh)

    def fsyncdir(self, path, datasync, fh):
        with self.mu:
            if self._budget() >= 0 and self.tripped:
                raise FuseOSError(errno.EIO)
        return 0


if __name__ == '__main__':
    root, mnt, control = sys.argv[1], sys.argv[2], sys.argv[3]
    FUSE(EioFS(root, control), mnt, nothreads=False, foreground=True, hard_remove=True)
