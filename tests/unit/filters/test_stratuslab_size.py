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


def test_filter_module_maps_the_names():
    assert size.FilterModule().filters() == {"sl_size_to_mb": size.sl_size_to_mb,
                                             "sl_cache_errors": size.sl_cache_errors}


# --------------------------------------------------------------------------
# sl_cache_errors: the sizes against each other, the images and the disk
# --------------------------------------------------------------------------

GIB = 1024**3
MOUNTS = [{"mount": "/", "size_total": 250 * GIB, "size_available": 70 * GIB},
          {"mount": "/var/spool", "size_total": 10 * GIB, "size_available": 9 * GIB},
          {"mount": "/var/spool/other", "size_total": 1000 * GIB, "size_available": 1000 * GIB}]
LABELS = {"cache_size": "site_cache_size (squid_cache_size)",
          "max_object_size": "site_cache_max_object_size (squid_max_object_size)"}


def cache_errors(cache, largest, **kwargs):
    return size.sl_cache_errors(cache, largest, labels=LABELS, prefix="squid: ", **kwargs)


def test_good_sizes_pass():
    assert cache_errors("20G", "8G") == []
    assert cache_errors("4G", "2G", mounts=MOUNTS, cache_dir="/var/spool/squid", cache_dir_exists=False) == []


@pytest.mark.parametrize("label, cache, largest", [
    ("site_cache_size", "20", "8G"), ("site_cache_size", 20, "8G"), ("site_cache_size", "lots", "8G"),
    ("site_cache_size", "0G", "8G"), ("site_cache_size", ["20G"], "8G"),
    ("site_cache_max_object_size", "20G", "8"), ("site_cache_max_object_size", "20G", 8),
    ("site_cache_max_object_size", "20G", "-1G"),
])
def test_every_size_that_is_not_one_is_refused(label, cache, largest):
    found = cache_errors(cache, largest)
    assert len(found) == 1 and found[0].startswith("squid: " + label), found
    assert "is not a size" in found[0] or "not a positive size" in found[0]


@pytest.mark.parametrize("largest", ["4M", "100M", "511M"])
def test_a_largest_object_smaller_than_any_image_is_refused(largest):
    found = cache_errors("20G", largest)
    assert len(found) == 1 and "site_cache_max_object_size (squid_max_object_size) %r is smaller than 512M" % largest \
        in found[0], found


def test_the_smallest_image_is_a_parameter():
    assert cache_errors("20G", "100M", smallest_image="64M") == []


def test_a_largest_object_bigger_than_the_cache_is_refused():
    found = cache_errors("20G", "30G")
    assert len(found) == 1 and "is bigger than site_cache_size (squid_cache_size) '20G'" in found[0], found


@pytest.mark.parametrize("cache, cache_dir, exists, words", [
    ("300G", "/srv/squid", True, ["larger than the file system that holds /srv/squid (mounted on /), 250G"]),
    ("20G", "/var/spool/squid", True, ["mounted on /var/spool), 10G"]),
    ("100G", "/srv/squid", False, ["larger than the free space", "70G"]),
    ("9.5G", "/var/spool", False, ["free space", "mounted on /var/spool), 9G"]),
])
def test_a_cache_larger_than_its_disk_is_refused(cache, cache_dir, exists, words):
    found = cache_errors(cache, "2G", mounts=MOUNTS, cache_dir=cache_dir, cache_dir_exists=exists)
    assert len(found) == 1 and found[0].startswith("squid: site_cache_size (squid_cache_size) %r" % cache), found
    for word in words:
        assert word in found[0], found[0]


@pytest.mark.parametrize("cache", ["8.5G", "10G"])
def test_a_cache_that_leaves_less_than_a_fifth_of_its_disk_free_is_refused(cache):
    # Squid 5.7 stops on its first failed write to a full cache disk (molecule/squid/tests/test_cache_disk_full.py)
    found = cache_errors(cache, "2G", mounts=MOUNTS, cache_dir="/var/spool/squid", cache_dir_exists=True)
    assert len(found) == 1 and "leaves less than a fifth of the file system that holds /var/spool/squid" in found[0]
    assert "expected at most 8G" in found[0], found
    assert cache_errors("8G", "2G", mounts=MOUNTS, cache_dir="/var/spool/squid", cache_dir_exists=True) == []


def test_an_existing_cache_may_use_its_disk_beyond_the_free_space():
    # The cache's own files take part of the disk already.
    assert cache_errors("100G", "2G", mounts=MOUNTS, cache_dir="/srv/squid", cache_dir_exists=True) == []


def test_the_longest_mount_point_holds_the_path():
    assert cache_errors("500G", "2G", mounts=MOUNTS, cache_dir="/var/spool/other/squid") == []
    assert cache_errors("500G", "2G", mounts=MOUNTS, cache_dir="/var/spool/otherdir")  # not under /var/spool/other


def test_without_mounts_the_disk_is_not_checked():
    assert cache_errors("900T", "2G", mounts=[], cache_dir="/var/spool/squid") == []


def test_every_cache_mistake_is_reported_at_once():
    assert len(cache_errors("300G", "4M", mounts=MOUNTS, cache_dir="/srv/squid")) == 2
