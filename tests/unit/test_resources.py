"""Resource slots and `--resources` parsing (execute/slots.py, runconfig.parse_resources)."""
from __future__ import annotations

import pytest

from pipetool.errors import UsageError
from pipetool.execute.slots import Slots, too_big
from pipetool.runconfig import make_config, parse_resources

# --- parse_resources ---------------------------------------------------------------------

def test_resources_parse_into_sorted_name_amount_pairs():
    assert parse_resources(["mem_gb=32,gpu=2"]) == (("gpu", 2.0), ("mem_gb", 32.0))


def test_resources_repeated_options_merge_and_the_last_amount_wins():
    assert parse_resources(["gpu=1", "mem_gb=0.5", "gpu=4"]) == (("gpu", 4.0), ("mem_gb", 0.5))


def test_resources_from_a_mapping_and_blank_parts():
    assert parse_resources({"gpu": 2}) == (("gpu", 2.0),)
    assert parse_resources([" gpu = 2 , ,"]) == (("gpu", 2.0),)
    assert parse_resources(None) == () and parse_resources([]) == ()


@pytest.mark.parametrize("text, needle", [
    ("gpu", "not NAME=AMOUNT"),
    ("=2", "not NAME=AMOUNT"),
    ("gpu=two", "not a number"),
    ("gpu=-1", "0 or more"),
    ("gpu=nan", "0 or more"),
    ("gpu=inf", "0 or more"),
])
def test_bad_resources_are_usage_errors_naming_the_part(text, needle):
    with pytest.raises(UsageError) as err:
        parse_resources([text])
    assert needle in err.value.message
    assert err.value.exit_code == 2


def test_config_capacity_is_what_resources_declare():
    assert make_config(resources=["gpu=2"]).capacity == {"gpu": 2.0}


# --- slots -------------------------------------------------------------------------------

def test_a_target_fits_only_while_its_declared_resources_are_free():
    s = Slots({"gpu": 2})
    assert s.fits([("gpu", 2)])
    s.take([("gpu", 1)])
    assert s.fits([("gpu", 1)]) and not s.fits([("gpu", 2)])
    s.take([("gpu", 1)])
    assert not s.fits([("gpu", 1)])
    assert s.fits([]), "a target needing nothing always fits"
    s.give([("gpu", 1)])
    assert s.fits([("gpu", 1)])


def test_undeclared_resources_are_not_counted():
    s = Slots({"gpu": 1})
    for _ in range(5):
        assert s.fits([("tpu", 8)])
        s.take([("tpu", 8)])
    assert s.free == {"gpu": 1}
    assert Slots({}).fits([("gpu", 100)])


def test_every_resource_of_a_target_must_fit():
    s = Slots({"gpu": 1, "mem_gb": 8})
    s.take([("mem_gb", 6)])
    assert not s.fits([("gpu", 1), ("mem_gb", 4)])
    assert s.fits([("gpu", 1), ("mem_gb", 2)])


def test_fractional_holds_give_back_exactly_what_they_took():
    s = Slots({"mem_gb": 1.0})
    parts = [("mem_gb", 0.1), ("mem_gb", 0.2), ("mem_gb", 0.7)]
    for p in parts:
        assert s.fits([p])
        s.take([p])
    assert not s.fits([("mem_gb", 0.1)])
    for p in parts:
        s.give([p])
    assert s.free == {"mem_gb": 1.0}
    assert s.fits([("mem_gb", 1.0)])


def test_too_big_names_each_declared_resource_asked_beyond_the_total():
    assert too_big([("gpu", 2), ("mem_gb", 8), ("tpu", 9)], {"gpu": 1, "mem_gb": 8}) == [("gpu", 2, 1)]
    assert too_big([("gpu", 2)], {}) == []
