"""The return date an out-of-office reply gives, read from its text."""

from __future__ import annotations

from datetime import date

import pytest

from outreach.inbox import return_date

SENT = date(2026, 12, 2)


@pytest.mark.parametrize(("text", "expected"), [
    ("I am out of the office and back on December 8.", date(2026, 12, 8)),
    ("Out until Dec 14th, limited access to email.", date(2026, 12, 14)),
    ("I'll return on 2027-01-05. For urgent matters call Bob.", date(2027, 1, 5)),
    ("Away from 1 December, returning 12 January 2027.", date(2027, 1, 12)),
    ("On leave since November 20; back January 3.", date(2027, 1, 3)),  # no year: the next one
    ("Thanks for your message, I will answer soon.", None),
    ("Back on February 30.", None),  # not a date
    ("I'm travelling until the 9th.", None),  # a day without a month says too little
    ("Out from December 3 to December 10, back December 11.", date(2026, 12, 11)),
])
def test_return_date(text: str, expected: date | None) -> None:
    assert return_date(text, SENT) == expected
