#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Renders PNG copies of the SVG icons in icons/ for Qt installs without the SVG image plugin
(Debian's qt6-svg is optional). The shapes below mirror the SVG files one to one; rerun after
editing an icon:  python3 resources/render_png_icons.py  (no dependencies beyond the stdlib)."""
import math, os, struct, zlib

HERE = os.path.dirname(os.path.abspath(__file__))

def hexrgb(h):
    return tuple(int(h[i:i + 2], 16) for i in (1, 3, 5))

class Canvas:
    def __init__(self, size, view):
        self.n, self.s, self.ss = size, size / view, 4  # 4x4 supersampling
        self.px = [[(0, 0, 0, 0)] * size for _ in range(size)]

    def fill(self, inside, colour):
        r, g, b = hexrgb(colour)
        for y in range(self.n):
            for x in range(self.n):
                hits = sum(inside((x + (i + .5) / self.ss) / self.s, (y + (j + .5) / self.ss) / self.s)
                           for i in range(self.ss) for j in range(self.ss))
                if hits:
                    a = hits / self.ss ** 2
                    pr, pg, pb, pa = self.px[y][x]
                    oa = a + pa / 255 * (1 - a)
                    mix = lambda c, p: int((c * a + p * pa / 255 * (1 - a)) / oa)
                    self.px[y][x] = (mix(r, pr), mix(g, pg), mix(b, pb), int(oa * 255))

    def rect(self, x, y, w, h, colour):
        self.fill(lambda u, v: x <= u <= x + w and y <= v <= y + h, colour)

    def frame(self, x, y, w, h, t, colour):
        self.fill(lambda u, v: x - t / 2 <= u <= x + w + t / 2 and y - t / 2 <= v <= y + h + t / 2
                  and not (x + t / 2 < u < x + w - t / 2 and y + t / 2 < v < y + h - t / 2), colour)

    def circle(self, cx, cy, r, colour, ring=0):
        self.fill(lambda u, v: (abs(math.hypot(u - cx, v - cy) - r) <= ring / 2) if ring
                  else math.hypot(u - cx, v - cy) <= r, colour)

    def line(self, x1, y1, x2, y2, t, colour):
        def inside(u, v):
            dx, dy = x2 - x1, y2 - y1
            k = max(0, min(1, ((u - x1) * dx + (v - y1) * dy) / (dx * dx + dy * dy)))
            return math.hypot(u - x1 - k * dx, v - y1 - k * dy) <= t / 2
        self.fill(inside, colour)

    def polygon(self, pts, colour):
        def inside(u, v):
            c = False
            for (ax, ay), (bx, by) in zip(pts, pts[1:] + pts[:1]):
                if (ay > v) != (by > v) and u < (bx - ax) * (v - ay) / (by - ay) + ax:
                    c = not c
            return c
        self.fill(inside, colour)

    def save(self, path):
        raw = b"".join(b"\0" + bytes(c for p in row for c in p) for row in self.px)
        chunk = lambda t, d: struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
        with open(path, "wb") as f:
            f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", self.n, self.n, 8, 6, 0, 0, 0))
                    + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))

def moewb(c):
    c.rect(2, 2, 60, 60, "#2c3e50")
    for x in (14, 32, 50):
        c.line(32, 12, x, 32, 2, "#ecf0f1")
    c.circle(32, 12, 5, "#fde725")
    for x, col in ((8, "#21918c"), (26, "#5ec962"), (44, "#3b528b")):
        c.rect(x, 32, 12, 20, col)

def open_model(c):
    c.polygon([(2, 6), (9, 6), (11, 8), (22, 8), (22, 20), (2, 20)], "#8a6d1f")
    c.polygon([(3, 7), (8.6, 7), (10.6, 9), (21, 9), (21, 19), (3, 19)], "#f0c674")
    for x, col in ((7, "#21918c"), (11, "#5ec962"), (15, "#3b528b")):
        c.rect(x, 11, 3, 6, col)

def open_stats(c):
    c.polygon([(5, 2), (15, 2), (20, 7), (20, 22), (5, 22)], "#555555")
    c.polygon([(6, 3), (14.6, 3), (19, 7.4), (19, 21), (6, 21)], "#ffffff")
    for x, y, col in ((7, 15, "#440154"), (11, 11, "#21918c"), (15, 8, "#fde725")):
        c.rect(x, y, 3, 20 - y, col)

def export(c):
    c.frame(3, 12, 18, 9, 2, "#555555")
    c.line(12, 2, 12, 14, 2, "#2a7ab0")
    c.line(7, 7, 12, 2, 2, "#2a7ab0")
    c.line(12, 2, 17, 7, 2, "#2a7ab0")

def reset_zoom(c):
    c.circle(10, 10, 6, "#555555", ring=2)
    c.line(14.5, 14.5, 21, 21, 3, "#555555")
    c.line(7, 10, 13, 10, 2, "#2a7ab0")

for name, draw, size, view in (("moewb", moewb, 64, 64), ("open-model", open_model, 48, 24),
                               ("open-stats", open_stats, 48, 24), ("export", export, 48, 24),
                               ("reset-zoom", reset_zoom, 48, 24)):
    canvas = Canvas(size, view)
    draw(canvas)
    canvas.save(os.path.join(HERE, "icons", name + ".png"))
