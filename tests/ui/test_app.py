"""What the application gives every window: its icon and the images of its themes."""

from __future__ import annotations

import re
from pathlib import Path

from PySide6.QtGui import QColor

from blotter.ui.app import app_icon
from blotter.ui.theme import stylesheet


def test_the_icon_ships_with_the_package_and_draws_at_a_shells_sizes(qapp: object) -> None:
    icon = app_icon()
    assert not icon.isNull()
    for size in (16, 48, 256):
        image = icon.pixmap(size, size).toImage()
        assert (image.width(), image.height()) == (size, size)
        # the rounded square's middle is drawn, opaque; its corner is left clear
        assert image.pixelColor(size // 2, size // 8).alpha() == 255
        assert image.pixelColor(0, 0) == QColor(0, 0, 0, 0)


def test_every_image_the_themes_draw_ships_with_the_package() -> None:
    for dark in (True, False):
        images = re.findall(r'url\("([^"]+)"\)', stylesheet(dark=dark))
        assert len(images) == 4  # the spin boxes' and the headers' arrows, up and down
        for image in images:
            assert Path(image).is_file(), image
