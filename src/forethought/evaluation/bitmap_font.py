"""A 3x5 pixel font in numpy, for labels drawn into GIF frames without Pillow's fonts.

Drawn at the observation's resolution and upscaled with the frame (nearest), the glyphs stay
crisp at any ``scale``. Lower case only (upper case is folded to it); a character without a
glyph is drawn as ``?``.
"""

from __future__ import annotations

import numpy as np

GLYPH_H, GLYPH_W = 5, 3
ADVANCE = GLYPH_W + 1  # one blank column between characters

_ROWS = {
    "0": "111 101 101 101 111", "1": "010 110 010 010 111", "2": "111 001 111 100 111",
    "3": "111 001 111 001 111", "4": "101 101 111 001 001", "5": "111 100 111 001 111",
    "6": "111 100 111 101 111", "7": "111 001 010 010 010", "8": "111 101 111 101 111",
    "9": "111 101 111 001 111",
    "a": "010 101 111 101 101", "b": "110 101 110 101 110", "c": "011 100 100 100 011",
    "d": "110 101 101 101 110", "e": "111 100 110 100 111", "f": "111 100 110 100 100",
    "g": "011 100 101 101 011", "h": "101 101 111 101 101", "i": "111 010 010 010 111",
    "j": "001 001 001 101 010", "k": "101 101 110 101 101", "l": "100 100 100 100 111",
    "m": "101 111 111 101 101", "n": "110 101 101 101 101", "o": "010 101 101 101 010",
    "p": "110 101 110 100 100", "q": "010 101 101 110 011", "r": "110 101 110 101 101",
    "s": "011 100 010 001 110", "t": "111 010 010 010 010", "u": "101 101 101 101 011",
    "v": "101 101 101 010 010", "w": "101 101 111 111 101", "x": "101 101 010 101 101",
    "y": "101 101 010 010 010", "z": "111 001 010 100 111",
    " ": "000 000 000 000 000", "/": "001 001 010 100 100", ":": "000 010 000 010 000",
    ".": "000 000 000 000 010", "-": "000 000 111 000 000", "=": "000 111 000 111 000",
    "%": "101 001 010 100 101", "?": "111 001 010 000 010", "#": "101 111 101 111 101",
}
GLYPHS = {c: np.array([[b == "1" for b in row] for row in rows.split()], dtype=bool) for c, rows in _ROWS.items()}


def text_mask(text: str) -> np.ndarray:
    """Bool ``(5, 4 * len(text) - 1)``: True where ``text`` has ink (``(5, 0)`` for ``""``)."""
    if not text:
        return np.zeros((GLYPH_H, 0), dtype=bool)
    cols = []
    for c in text.lower():
        cols += [GLYPHS.get(c, GLYPHS["?"]), np.zeros((GLYPH_H, 1), dtype=bool)]
    return np.concatenate(cols[:-1], axis=1)


def text_width(text: str) -> int:
    return max(0, ADVANCE * len(text) - 1)


def draw_text(image: np.ndarray, text: str, x: int, y: int, colour: np.ndarray | tuple[int, ...]) -> np.ndarray:
    """Paint ``text`` into ``image (H, W, C)`` in place with its top-left corner at ``(x, y)``;
    whatever falls outside the image is clipped. Returns ``image``."""
    mask = text_mask(text)
    h, w = image.shape[:2]
    y0, x0 = max(y, 0), max(x, 0)
    y1, x1 = min(y + mask.shape[0], h), min(x + mask.shape[1], w)
    if y1 > y0 and x1 > x0:
        region = image[y0:y1, x0:x1]
        region[mask[y0 - y : y1 - y, x0 - x : x1 - x]] = np.asarray(colour, dtype=image.dtype)
    return image
