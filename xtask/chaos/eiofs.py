#!/usr/bin/env python3
"""A disk that fails, for `cargo xtask chaos` (faults `eio`, `eioread`): the passthrough FUSE
filesystem of crates/wal/benches/slowfs (no fsync delay) over ROOT, mounted at MNT, whose
writes and fsyncs, or reads of chosen files, fail with EIO once a byte budget is spent.

    python3 eiofs.py ROOT MNT CONTROL     (foreground; unmount with umount MNT)

CONTROL holds the fault, counted from when the file last changed:
  -1 or {}                            no fault;
  N or {"write": N}                   writes after the next N bytes fail with EIO, and so does
                                      every fsync after the first failed write;
  {"read": N, "pattern": GLOB}        reads of files whose path below MNT (no leading /)
                                      matches GLOB fail with EIO once N bytes of them were read.
A fault stays tripped until CONTROL changes. Every EIO is logged on stderr as
`eiofs: EIO <op> <path>` (xtask counts them to tell whether a fault landed).
"""
import errno, fnmatch, json, os, sys, threading

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', '..', 'crates', 'wal', 'benches', 'slowfs'))
from fuse import FUSE, FuseOSError  # noqa: E402
from slowfs import SlowFS  # noqa: E402


def parse(text):
    """The fault in CONTROL's text: (write budget or None, read budget or None, pattern)."""
    v = json.loads(text.strip() or '-1')
    if isinstance(v, int):
        return (v if v >= 0 else None), None, None
    return v.get('write'), v.get('read'), v.get('pattern')


class EioFS(SlowFS):
    def __init__(self, root, control):
        super().__init__(root, 0.0)
        self.control = control
        self.mu = threading.Lock()  # not `lock`: that is a FUSE operation
        self.seen = None   # (stat key, fault) of the control file last read
        self.spent = 0
        self.tripped = False

    def _fault(self):
        """The current fault; a changed control file restarts the count."""
        try:
            st = os.stat(self.control)
            key = st.st_ino, st.st_mtime_ns, st.st_size
            if self.seen is None or self.seen[0] != key:
                with open(self.control) as f:
                    fault = parse(f.read())
                self.seen = (key, fault)
                self.spent, self.tripped = 0, False
            return self.seen[1]
        except (OSError, ValueError, AttributeError):
            return None, None, None

    def _eio(self, op, path):
        print('eiofs: EIO %s %s' % (op, path), file=sys.stderr, flush=True)
        raise FuseOSError(errno.EIO)

    def link(self, target, source):
        # fusepy's argument order: `ln source target`.
        return os.link(self._p(source), self._p(target))

    def read(self, path, length, offset, fh):
        data = os.pread(fh, length, offset)
        with self.mu:
            _, budget, pattern = self._fault()
            if budget is None or not fnmatch.fnmatch(path.lstrip('/'), pattern or '*'):
                return data
            if self.tripped or self.spent + len(data) > budget:
                self.tripped = True
                self._eio('read', path)
            self.spent += len(data)
        return data

    def write(self, path, buf, offset, fh):
        with self.mu:
            budget = self._fault()[0]
            if budget is not None and (self.tripped or self.spent + len(buf) > budget):
                self.tripped = True
                self._eio('write', path)
            if budget is not None:
                self.spent += len(buf)
        return os.pwrite(fh, buf, offset)

    def fsync(self, path, datasync, fh):
        with self.mu:
            if self._fault()[0] is not None and self.tripped:
                self._eio('fsync', path)
        return super().fsync(path, datasync, fh)

    def fsyncdir(self, path, datasync, fh):
        with self.mu:
            if self._fault()[0] is not None and self.tripped:
                self._eio('fsyncdir', path)
        return 0


if __name__ == '__main__':
    root, mnt, control = sys.argv[1], sys.argv[2], sys.argv[3]
    FUSE(EioFS(root, control), mnt, nothreads=False, foreground=True, hard_remove=True)
