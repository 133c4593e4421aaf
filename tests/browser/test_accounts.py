"""The account and admin pages on a 360 px phone, in English and Chinese: nothing
scrolls sideways (wide tables scroll inside their own box), no CSP violation."""

from __future__ import annotations

from playwright.sync_api import expect

from .conftest import PHONE, sign_up, unique
from .test_layout import no_horizontal_scroll

PAGES = ["/", "/settings/", "/admin/users/", "/invites/"]


def test_an_admin_on_a_phone_sees_every_page_without_sideways_scrolling(open_page, web):
    admin = open_page(viewport=PHONE)
    sign_up(admin, web.url, unique("administrator"))  # the module's database is new: the first account
    for name in ("bob", "chen"):
        sign_up(open_page(viewport=PHONE), web.url, unique(name))
    admin.get_by_role("link", name="Administration").click()
    expect(admin.get_by_role("heading", name="Accounts")).to_be_visible()

    admin.goto(web.url + "/invites/")
    admin.get_by_label("Number of uses").fill("3")
    admin.get_by_role("button", name="Create link").click()
    expect(admin.locator("input.link-field")).to_have_count(1)

    for language, lang in (("en", "en"), ("zh_Hans", "zh-Hans")):
        admin.goto(web.url + "/settings/")
        admin.locator("#language").select_option(language)
        admin.locator('form[action="/settings/"] button[type="submit"]').click()
        expect(admin.locator("html")).to_have_attribute("lang", lang)
        for path in PAGES:
            admin.goto(web.url + path)
            no_horizontal_scroll(admin)
