"""Line images made by another generator than the zoo's digit lines: fonts, noise, lines, rotation.

The OCR part of `benchmarks/outside_data.py`: each set is written as a folder of PNG files with a
`labels.csv` (`filename,words`), the layout `zoo train ocr --data FOLDER` reads, so the benchmark
trains the zoo exactly as a user would. The glyphs come from the TrueType fonts matplotlib ships
(DejaVu, STIX, Computer Modern), drawn with Pillow; nothing here is derived from the zoo's own data.

- `captcha`: 5 characters from the 19-character alphabet of keras.io's captcha example
  ("2345678bcdefgmnpwxy"), 200x50, each glyph in a random font, size and rotation, dark on a light
  mottled background, with speckle noise and two to three crossing strokes.
- `words`: lower-case English words of 3 to 9 letters (from the Python standard library's own
  docstrings), one font per image, noise, blur and a small skew, 40 pixels high, as wide as the word.
- `serif`: serial codes of 4 to 7 upper-case letters and digits in serif and monospace italic at a
  small size (24 pixels), light ink on dark paper.

    python benchmarks/outside_lines.py captcha /tmp/captcha --count 1500
"""

import argparse
import csv
import os
import re
import sys

import numpy as np

CAPTCHA_ALPHABET = "2345678bcdefgmnpwxy"
SERIAL_ALPHABET = "ABCDEFGHJKLMNPRSTUVWXYZ23456789"
SETS = ("captcha", "words", "serif")


def font_folder():
    import matplotlib

    return os.path.join(os.path.dirname(matplotlib.__file__), "mpl-data", "fonts", "ttf")


def fonts(kind):
    """TrueType files of one family group that matplotlib ships."""
    names = {
        "sans": ["DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSans-Oblique.ttf", "DejaVuSansMono-Bold.ttf"],
        "serif": ["DejaVuSerif.ttf", "DejaVuSerif-Bold.ttf", "DejaVuSerif-Italic.ttf", "STIXGeneral.ttf"],
        "italic": ["DejaVuSerif-BoldItalic.ttf", "STIXGeneralItalic.ttf", "DejaVuSansMono-Oblique.ttf", "cmtt10.ttf"],
    }[kind]
    paths = [os.path.join(font_folder(), name) for name in names]
    return [p for p in paths if os.path.exists(p)]


def vocabulary(lowest=3, highest=9):
    """Lower-case words from the docstrings of a few standard-library modules (offline, not ours)."""
    import collections
    import csv as csv_module
    import email
    import json
    import pydoc
    import textwrap
    import unittest

    text = " ".join(pydoc.getdoc(m) or "" for m in (collections, csv_module, email, json, textwrap, unittest, os))
    for module in (collections, unittest, textwrap, json):
        for name in dir(module):
            text += " " + (pydoc.getdoc(getattr(module, name)) or "")
    words = sorted({w for w in re.findall(r"\b[a-z]+\b", text) if lowest <= len(w) <= highest})
    return words


def _glyph(character, font, fill, angle):
    from PIL import Image, ImageDraw

    box = font.getbbox(character)
    w, h = box[2] - box[0] + 4, box[3] - box[1] + 4
    layer = Image.new("LA", (w, h), (0, 0))
    ImageDraw.Draw(layer).text((2 - box[0], 2 - box[1]), character, font=font, fill=(fill, 255))
    return layer.rotate(angle, resample=Image.BICUBIC, expand=True)


def captcha(rng, text):
    from PIL import Image, ImageDraw, ImageFilter, ImageFont

    width, height = 200, 50
    background = rng.integers(200, 250, size=(height // 5, width // 5)).astype("uint8")
    image = Image.fromarray(background).resize((width, height), Image.BILINEAR).convert("L")
    files = fonts("sans") + fonts("serif")
    x = int(rng.integers(4, 20))
    for character in text:
        font = ImageFont.truetype(files[int(rng.integers(len(files)))], int(rng.integers(26, 36)))
        glyph = _glyph(character, font, int(rng.integers(0, 90)), float(rng.uniform(-25, 25)))
        y = int(rng.integers(0, max(1, height - glyph.size[1])))
        image.paste(glyph.convert("L"), (x, y), glyph.getchannel("A"))
        x += int(glyph.size[0] * rng.uniform(0.7, 0.95))
    draw = ImageDraw.Draw(image)
    for _ in range(int(rng.integers(2, 4))):
        points = [(int(rng.integers(0, width)), int(rng.integers(0, height))) for _ in range(2)]
        draw.line(points, fill=int(rng.integers(30, 120)), width=int(rng.integers(1, 3)))
    pixels = np.asarray(image, dtype="float32")
    pixels += rng.normal(0, 18, pixels.shape)
    speckles = rng.random(pixels.shape) < 0.03
    pixels[speckles] = rng.integers(0, 255, int(speckles.sum()))
    image = Image.fromarray(np.clip(pixels, 0, 255).astype("uint8")).filter(ImageFilter.SMOOTH)
    return image.convert("RGB")


def word(rng, text):
    from PIL import Image, ImageDraw, ImageFilter, ImageFont

    file = fonts("sans")[int(rng.integers(len(fonts("sans"))))]
    font = ImageFont.truetype(file, int(rng.integers(24, 32)))
    box = font.getbbox(text)
    width, height = box[2] - box[0] + 16, 40
    image = Image.new("L", (width, height), int(rng.integers(190, 256)))
    ImageDraw.Draw(image).text(
        (8 - box[0], (height - (box[3] - box[1])) // 2 - box[1]), text, font=font, fill=int(rng.integers(0, 80))
    )
    image = image.rotate(float(rng.uniform(-4, 4)), resample=Image.BICUBIC, fillcolor=int(np.asarray(image)[0, 0]))
    image = image.filter(ImageFilter.GaussianBlur(float(rng.uniform(0, 1.0))))
    pixels = np.asarray(image, dtype="float32") + rng.normal(0, 14, (height, width))
    return Image.fromarray(np.clip(pixels, 0, 255).astype("uint8"))


def serial(rng, text):
    from PIL import Image, ImageDraw, ImageFont

    files = fonts("italic")
    font = ImageFont.truetype(files[int(rng.integers(len(files)))], int(rng.integers(17, 22)))
    box = font.getbbox(text)
    width, height = box[2] - box[0] + 10, 24
    paper = int(rng.integers(0, 60))
    image = Image.new("L", (width, height), paper)
    ImageDraw.Draw(image).text(
        (5 - box[0], (height - (box[3] - box[1])) // 2 - box[1]), text, font=font, fill=int(rng.integers(170, 256))
    )
    pixels = np.asarray(image, dtype="float32") + rng.normal(0, 10, (height, width))
    return Image.fromarray(np.clip(pixels, 0, 255).astype("uint8"))


def texts(name, rng, count):
    if name == "captcha":
        return ["".join(rng.choice(list(CAPTCHA_ALPHABET), 5)) for _ in range(count)]
    if name == "words":
        words = vocabulary()
        return [words[int(i)] for i in rng.integers(0, len(words), count)]
    if name == "serif":
        return ["".join(rng.choice(list(SERIAL_ALPHABET), int(rng.integers(4, 8)))) for _ in range(count)]
    raise ValueError(f"unknown line set {name!r}; choose from {', '.join(SETS)}")


def write(name, folder, count, seed=0):
    """Write `count` images of the set `name` and their labels.csv into `folder`; returns `folder`."""
    rng = np.random.default_rng(seed)
    draw = {"captcha": captcha, "words": word, "serif": serial}[name]
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "labels.csv"), "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["filename", "words"])
        for index, text in enumerate(texts(name, rng, count)):
            filename = f"{index:05d}.png"
            draw(rng, text).save(os.path.join(folder, filename))
            writer.writerow([filename, text])
    return folder


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("set", choices=SETS)
    parser.add_argument("folder")
    parser.add_argument("--count", type=int, default=1500)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    write(args.set, args.folder, args.count, args.seed)
    with open(os.path.join(args.folder, "labels.csv")) as handle:
        rows = sum(1 for _ in handle) - 1
    print(f"wrote {rows} {args.set} lines to {args.folder}")
    return 1 if rows != args.count else 0


if __name__ == "__main__":
    sys.exit(main())
