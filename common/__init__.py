"""The ground floor every other package may import: one checked config loader (``common.config``), image file
I/O (``common.images``) and the numbers several packages share (``common.limits``)."""
