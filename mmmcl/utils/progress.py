"""Progress that stays readable in a log file.

On a terminal, mmengine's live bar (one line rewritten with ``\\r``); when
the stream is not a terminal (``make demo > log``, a pipe, CI), one line
every ``every`` of the work, so a redirected log holds a few short lines
instead of one line of carriage returns.
"""
import sys
import time
from typing import Optional, TextIO


class Progress:
    """Count ``total`` steps of work and show how far it is.

    Args:
        total (int): Steps of the whole work.
        desc (str): What is being done, at the start of each line written
            to a stream that is not a terminal. Defaults to ``'progress'``.
        file (TextIO, optional): Where to write. Defaults to None
            (``sys.stdout`` when the object is built).
        every (float): Fraction of ``total`` between two lines on a stream
            that is not a terminal. Defaults to 0.1 (a line every 10 %).
    """

    def __init__(self,
                 total: int,
                 desc: str = 'progress',
                 file: Optional[TextIO] = None,
                 every: float = 0.1) -> None:
        if total <= 0:
            raise ValueError(f'Progress: total must be positive, got {total}')
        if not 0 < every <= 1:
            raise ValueError(f'Progress: every must be in (0, 1], got {every}')
        self.total, self.desc, self.every = total, desc, every
        self.file = sys.stdout if file is None else file
        self.done, self._next = 0, every
        self._start = time.monotonic()
        isatty = getattr(self.file, 'isatty', None)
        self.live = bool(isatty and isatty())
        if self.live:
            from mmengine.utils import ProgressBar
            self._bar = ProgressBar(total, file=self.file)

    def update(self, num: int = 1) -> None:
        """``num`` more steps are done."""
        self.done += num
        if self.live:
            self._bar.update(num)
            return
        fraction = self.done / self.total
        if fraction + 1e-12 >= self._next or self.done >= self.total:
            elapsed = time.monotonic() - self._start
            self.file.write(f'{self.desc}: {self.done}/{self.total} '
                            f'({100 * fraction:.0f} %), {elapsed:.0f} s\n')
            self.file.flush()
            while self._next <= fraction + 1e-12:
                self._next += self.every

    def close(self) -> None:
        """End the live bar's line (nothing to do for a log)."""
        if self.live:
            self.file.write('\n')
            self.file.flush()
