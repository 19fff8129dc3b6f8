"""Geometry and exact cycle count of the sliding-window line buffer (see hw/window.py).

Kept apart from the gateware so the cost model can use it without elaborating anything. The
cycle count replays the two row counters that couple the window's writer and reader, one
row at a time, which is exact because neither side stalls in the middle of a row when the
input never idles and the output never pushes back.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["WindowGeometry", "window_cycles"]


@dataclass(frozen=True)
class WindowGeometry:
    """Shape of one sliding-window stage.

    Members
    -------
    height, width : int
        Input image size.
    kernel, stride : (int, int)
        ``(kh, kw)`` and ``(sh, sw)``.
    padding : (int, int, int, int)
        Top, left, bottom, right.
    beats_per_pixel : int
        ``channels // simd``.
    taps : int
        Kernel columns a beat (1, or a divisor of ``kw`` when a beat is a whole pixel).
    """

    height: int
    width: int
    kernel: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int, int, int]
    beats_per_pixel: int
    taps: int = 1

    pad_top = property(lambda self: self.padding[0])
    pad_left = property(lambda self: self.padding[1])
    pad_bottom = property(lambda self: self.padding[2])
    pad_right = property(lambda self: self.padding[3])

    @property
    def out_height(self) -> int:
        return (self.height + self.pad_top + self.pad_bottom - self.kernel[0]) // self.stride[0] + 1

    @property
    def out_width(self) -> int:
        return (self.width + self.pad_left + self.pad_right - self.kernel[1]) // self.stride[1] + 1

    @property
    def row_slots(self) -> int:
        """Line-buffer rows: the power of two at or above ``kh + sh`` (the next output row's
        rows arrive while this one is read) and at or above the rows the last output row
        holds plus those the next image's first needs, so that at an image's end the next
        image's rows arrive too (else the window waits for them, and every stage after it
        idles, an unpadded 3 x 3 one about two input rows an image)."""
        held = self.height - max(0, (self.out_height - 1) * self.stride[0] - self.pad_top)
        need = max(self.kernel[0] + self.stride[0], held + self.rows_needed(0))
        return 1 << (need - 1).bit_length()

    @property
    def out_row_beats(self) -> int:
        """Output beats of one output row: ``OW * kh * (kw / taps) * beats_per_pixel``."""
        return (self.out_width * self.kernel[0] * (self.kernel[1] // self.taps)
                * self.beats_per_pixel)

    def rows_needed(self, oy: int) -> int:
        """Input rows that must be complete before output row ``oy`` starts (at least one, so
        that nothing of an image is emitted before the image begins to arrive)."""
        return min(self.height, max(1, oy * self.stride[0] - self.pad_top + self.kernel[0]))

    def rows_released(self, oy: int) -> int:
        """Input rows no longer needed once output row ``oy`` is done."""
        if oy == self.out_height - 1:
            return self.height
        return min(self.height, max(0, (oy + 1) * self.stride[0] - self.pad_top))


def window_cycles(geom: WindowGeometry, images: int) -> int:
    """Cycles from the first input transfer to the last output transfer, both counted, for
    ``images`` images fed back to back, the output never blocked.

    Timeline (cycle 0 = first input transfer): input row ``r`` occupies ``row_beats``
    consecutive cycles from the first cycle after row ``r - 1`` when fewer than ``R`` rows are
    held; output row ``q`` occupies ``out_row_beats`` consecutive read cycles from the first
    cycle after row ``q - 1`` when its rows are complete (the counter updates one cycle after
    the last write); each read is offered one cycle later.
    """
    row_beats = geom.width * geom.beats_per_pixel
    out_beats = geom.out_row_beats
    slots = geom.row_slots
    rows = geom.height * images
    row_end = [0] * rows          # cycle of the last write of each input row
    releases: list[tuple[int, int]] = []  # (cycle of last read of an output row, rows released)
    next_write = 0
    next_read = 0
    r = 0
    last_read = 0
    seen = 0  # releases before this index free too few rows for row r (r only grows)

    def write_rows_until(count: int) -> None:
        # Writes rows until `count` are complete or the writer waits for a release.
        nonlocal r, next_write, seen
        while r < min(count, rows):
            start = next_write
            if r - slots + 1 > 0:
                while seen < len(releases) and releases[seen][1] < r - slots + 1:
                    seen += 1
                if seen == len(releases):
                    return
                start = max(start, releases[seen][0] + 1)
            row_end[r] = start + row_beats - 1
            next_write = row_end[r] + 1
            r += 1

    for image in range(images):
        base = image * geom.height
        for oy in range(geom.out_height):
            need = base + geom.rows_needed(oy)
            write_rows_until(need)
            assert r >= need, "the line buffer cannot hold the rows one output row needs"
            start = max(next_read, row_end[need - 1] + 1)
            last_read = start + out_beats - 1
            next_read = last_read + 1
            releases.append((last_read, base + geom.rows_released(oy)))
            write_rows_until(rows)
    return last_read + 2
