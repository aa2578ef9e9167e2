#!/usr/bin/env python3
"""Renders a terminal capture (`tmux capture-pane -e -p`: text with SGR colour escapes) to PNG.

Each cell is drawn as a background rectangle plus its glyph; block elements (half blocks,
full blocks, shades) are drawn as rectangles so the heatmap's half-block pixels come out exact
whatever the font. Needs Pillow and a monospace TTF (DejaVu Sans Mono by default).

usage: ansi2png.py capture.txt out.png [--cols N --rows N] [--font PATH] [--size PX]
"""
import argparse
import re

from PIL import Image, ImageDraw, ImageFont

ANSI16 = [
    (0, 0, 0), (205, 49, 49), (13, 188, 121), (229, 229, 16), (36, 114, 200), (188, 63, 188), (17, 168, 205), (229, 229, 229),
    (102, 102, 102), (241, 76, 76), (35, 209, 139), (245, 245, 67), (59, 142, 234), (214, 112, 214), (41, 184, 219), (255, 255, 255),
]
DEFAULT_FG = (220, 220, 220)
DEFAULT_BG = (24, 24, 28)


def xterm(n):
    if n < 16:
        return ANSI16[n]
    if n < 232:
        n -= 16
        levels = [0, 95, 135, 175, 215, 255]
        return (levels[n // 36], levels[(n // 6) % 6], levels[n % 6])
    v = 8 + 10 * (n - 232)
    return (v, v, v)


def parse(text, cols, rows):
    grid = [[(" ", DEFAULT_FG, DEFAULT_BG, False) for _ in range(cols)] for _ in range(rows)]
    fg, bg, bold, reverse, dim = DEFAULT_FG, DEFAULT_BG, False, False, False
    for y, line in enumerate(text.split("\n")[:rows]):
        x = 0
        for tok in re.split(r"(\x1b\[[0-9;:]*m)", line):
            if tok.startswith("\x1b["):
                params = [int(p) if p else 0 for p in re.split("[;:]", tok[2:-1])] or [0]
                i = 0
                while i < len(params):
                    p = params[i]
                    if p == 0:
                        fg, bg, bold, reverse, dim = DEFAULT_FG, DEFAULT_BG, False, False, False
                    elif p == 1:
                        bold = True
                    elif p == 2:
                        dim = True
                    elif p == 7:
                        reverse = True
                    elif p == 22:
                        bold = dim = False
                    elif p == 27:
                        reverse = False
                    elif 30 <= p <= 37:
                        fg = ANSI16[p - 30]
                    elif 90 <= p <= 97:
                        fg = ANSI16[p - 90 + 8]
                    elif 40 <= p <= 47:
                        bg = ANSI16[p - 40]
                    elif 100 <= p <= 107:
                        bg = ANSI16[p - 100 + 8]
                    elif p == 39:
                        fg = DEFAULT_FG
                    elif p == 49:
                        bg = DEFAULT_BG
                    elif p in (38, 48) and i + 1 < len(params):
                        if params[i + 1] == 5 and i + 2 < len(params):
                            c = xterm(params[i + 2])
                            i += 2
                        elif params[i + 1] == 2 and i + 4 < len(params):
                            c = tuple(params[i + 2:i + 5])
                            i += 4
                        else:
                            c = None
                        if c is not None:
                            if p == 38:
                                fg = c
                            else:
                                bg = c
                    i += 1
                continue
            for ch in tok:
                if x >= cols:
                    break
                f, b = (bg, fg) if reverse else (fg, bg)
                if dim:
                    f = tuple(int(v * 0.6 + b_ * 0.4) for v, b_ in zip(f, b))
                grid[y][x] = (ch, f, b, bold)
                x += 1
    return grid


def render(grid, font_path, size):
    font = ImageFont.truetype(font_path, size)
    bold_font = ImageFont.truetype(font_path.replace(".ttf", "-Bold.ttf"), size) if "Mono.ttf" in font_path else font
    cw = round(font.getlength("M"))
    ch = round(size * 1.25)
    rows, cols = len(grid), len(grid[0])
    img = Image.new("RGB", (cols * cw, rows * ch), DEFAULT_BG)
    d = ImageDraw.Draw(img)
    for y, row in enumerate(grid):
        for x, (c, fg, bg, bold) in enumerate(row):
            x0, y0 = x * cw, y * ch
            d.rectangle([x0, y0, x0 + cw - 1, y0 + ch - 1], fill=bg)
            if c == "▀":
                d.rectangle([x0, y0, x0 + cw - 1, y0 + ch // 2 - 1], fill=fg)
            elif c == "▄":
                d.rectangle([x0, y0 + ch // 2, x0 + cw - 1, y0 + ch - 1], fill=fg)
            elif c == "█":
                d.rectangle([x0, y0, x0 + cw - 1, y0 + ch - 1], fill=fg)
            elif c in "░▒▓":
                a = {"░": 0.25, "▒": 0.5, "▓": 0.75}[c]
                mix = tuple(int(f * a + b * (1 - a)) for f, b in zip(fg, bg))
                d.rectangle([x0, y0, x0 + cw - 1, y0 + ch - 1], fill=mix)
            elif c != " ":
                d.text((x0, y0 + (ch - size) // 2), c, font=bold_font if bold else font, fill=fg)
    return img


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("capture")
    ap.add_argument("out")
    ap.add_argument("--cols", type=int, default=0)
    ap.add_argument("--rows", type=int, default=0)
    ap.add_argument("--font", default="/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf")
    ap.add_argument("--size", type=int, default=14)
    a = ap.parse_args()
    text = open(a.capture, encoding="utf-8").read()
    lines = text.split("\n")
    rows = a.rows or len(lines)
    cols = a.cols or max(len(re.sub(r"\x1b\[[0-9;:]*m", "", l)) for l in lines)
    render(parse(text, cols, rows), a.font, a.size).save(a.out)


if __name__ == "__main__":
    main()
