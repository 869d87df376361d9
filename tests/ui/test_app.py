"""What the application gives every window: its icon, the images of its themes, and the
theme of a screenshot."""

from __future__ import annotations

import re
from pathlib import Path

from PySide6.QtGui import QColor, QImage

from blotter.ui.app import app_icon
from blotter.ui.theme import stylesheet
from tests.test_cli import screenshot_run


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


def test_a_screenshot_keeps_the_users_theme(qapp: object, tmp_path: Path) -> None:
    """View > Light theme, then a screenshot: a light one (from the default layout still)."""
    (tmp_path / "blotter").mkdir()
    (tmp_path / "blotter" / "blotter.conf").write_text("[General]\ntheme=light\n")
    result, shot = screenshot_run(tmp_path)
    assert result.returncode == 0, result.stderr
    image = QImage(str(shot))
    background = image.pixelColor(image.width() // 2, image.height() // 4)  # the orders' rows
    assert background.lightness() > 200
    assert (tmp_path / "blotter" / "blotter.conf").read_text() == "[General]\ntheme=light\n"
