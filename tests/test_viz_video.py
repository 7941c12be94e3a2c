"""Video helpers of tlr.viz: panels side by side and the HTML player."""

import re

import pytest
import torch

from tlr.viz import animate_frames, side_by_side


def test_side_by_side_puts_white_bars_between_panels():
    a, b = torch.zeros(3, 4, 5), torch.full((3, 4, 2), 0.5)
    v = side_by_side([a, b], gap=2)
    assert v.shape == (3, 4, 5 + 2 + 2)
    assert (v[..., :5] == 0).all() and (v[..., 5:7] == 1).all() and (v[..., 7:] == 0.5).all()
    with pytest.raises(ValueError, match="equal T and H"):
        side_by_side([a, torch.zeros(2, 4, 5)])
    with pytest.raises(ValueError, match="panels"):
        side_by_side([])


def test_animate_frames_embeds_every_frame():
    html = animate_frames(torch.rand(4, 6, 6, generator=torch.Generator().manual_seed(0)))
    assert "<script" in html and html.count("data:image/png;base64") == 4
    with pytest.raises(ValueError, match="T, H, W"):
        animate_frames(torch.zeros(6, 6))


def test_animate_frames_links_no_remote_stylesheet():
    """matplotlib's player links Font Awesome from a CDN; the book must stay offline."""
    html = animate_frames(torch.zeros(2, 4, 4))
    links = re.findall(r"<link\b[^>]*>", html, re.IGNORECASE)
    assert not [tag for tag in links if "http" in tag or "//" in tag], links
    assert "bootstrapcdn" not in html
    assert not re.search(r"""href\s*=\s*["']?(https?:)?//""", html, re.IGNORECASE)
    assert "<button" in html and "fa-play" in html  # the player's buttons are all still there
