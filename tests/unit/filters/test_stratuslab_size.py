"""Unit tests of filter_plugins/stratuslab_size.py (run: .venv/bin/pytest tests/unit/filters -q)."""


import pytest
from ansible.errors import AnsibleFilterError

from filter_testlib import load_plugin

size = load_plugin("stratuslab_size")


@pytest.mark.parametrize(
    "value, megabytes",
    [
        ("20G", 20480),
        ("20g", 20480),
        ("20GB", 20480),
        ("20 GiB", 20480),
        ("512M", 512),
        ("512MB", 512),
        ("1.5G", 1536),
        ("1T", 1048576),
        ("2048K", 2),
        ("1025K", 1),  # rounded down to whole megabytes
        (" 4G ", 4096),
    ],
)
def test_sizes_in_binary_megabytes(value, megabytes):
    assert size.sl_size_to_mb(value) == megabytes
    assert isinstance(size.sl_size_to_mb(value), int)


@pytest.mark.parametrize(
    "value, problem",
    [
        ("0G", "is not a positive size"),
        ("-5G", "is not a positive size"),
        ("0.0M", "is not a positive size"),
        ("512K", "smaller than 1 MB"),
        ("20", "is not a size"),  # a bare number: bytes? megabytes?
        ("20X", "is not a size"),
        ("G", "is not a size"),
        ("lots", "is not a size"),
        ("", "is not a size"),
        ("20 G B", "is not a size"),
        ("1e3G", "is not a size"),
        (20, "is not a size"),
        (None, "is not a size"),
        (True, "is not a size"),
        (["20G"], "is not a size"),
    ],
)
def test_bad_sizes_raise_naming_the_field_and_value(value, problem):
    with pytest.raises(AnsibleFilterError) as caught:
        size.sl_size_to_mb(value, label="site_cache_size")
    message = str(caught.value)
    assert message.startswith("sl_size_to_mb: site_cache_size "), message
    assert repr(value) in message or repr(str(value)) in message, message
    assert problem in message, message


def test_without_label_the_field_is_called_size():
    with pytest.raises(AnsibleFilterError, match=r"^sl_size_to_mb: size 'big' is not a size"):
        size.sl_size_to_mb("big")


def test_filter_module_maps_the_name():
    assert size.FilterModule().filters() == {"sl_size_to_mb": size.sl_size_to_mb}
