"""The reviewer-page tests' browser: one chromium per test module."""

from __future__ import annotations

import pytest
from browser import launch_chromium
from playwright.sync_api import sync_playwright


@pytest.fixture(scope="module")
def chrome():
    with sync_playwright() as playwright:
        instance = launch_chromium(playwright)
        yield instance
        instance.close()
