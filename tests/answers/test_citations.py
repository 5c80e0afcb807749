"""A model's [n] markers are checked against the sources it was given."""

from __future__ import annotations

from answers.citations import check_citations


def test_valid_citations_pass_and_are_numbered_in_order_of_use():
    checked = check_citations("Leave is 16 weeks [2]. It is paid [1][2].", given=3)
    assert checked.text == "Leave is 16 weeks [1]. It is paid [2][1]."
    assert checked.sources == [2, 1]  # new [1] is given source 2, new [2] is given source 1
    assert checked.invalid == []


def test_invented_numbers_are_caught_and_removed():
    checked = check_citations("Leave is 16 weeks [1]. Bonus is 9% [7]. Also [0].", given=2)
    assert checked.invalid == [7, 0]
    assert checked.text == "Leave is 16 weeks [1]. Bonus is 9%. Also."
    assert checked.sources == [1]


def test_comma_lists_keep_the_valid_numbers():
    checked = check_citations("Both say so [1, 4, 2].", given=2)
    assert checked.text == "Both say so [1][2]."
    assert checked.invalid == [4]


def test_an_answer_without_markers_cites_nothing():
    checked = check_citations("The sources do not answer this.", given=3)
    assert checked.sources == [] and checked.invalid == []


def test_brackets_that_are_not_markers_are_left_alone():
    checked = check_citations("See [the handbook] and [1].", given=1)
    assert checked.text == "See [the handbook] and [1]."


def test_a_bracketed_year_is_not_a_citation():
    checked = check_citations("The policy of [2026] applies [1].", given=1)
    assert checked.text == "The policy of [2026] applies [1]." and checked.invalid == []
