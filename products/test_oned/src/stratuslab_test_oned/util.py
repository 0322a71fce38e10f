"""Small helpers: time, hashes, IPv4 and MAC address arithmetic."""

import hashlib
import ipaddress
import time


def now():
    return time.time()


def log_time(t=None):
    """one_util::log_time: ctime(3) without its newline, the stamp of the
    TEMPLATE/ERROR messages ("Sun Dec  6 11:38:29 2026")."""
    return time.asctime(time.localtime(now() if t is None else t))


def sha256(text):
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def ip_to_int(ip):
    return int(ipaddress.IPv4Address(ip))


def int_to_ip(value):
    return str(ipaddress.IPv4Address(value & 0xFFFFFFFF))


def mac_to_int(mac):
    return int(mac.replace(":", ""), 16)


def int_to_mac(value):
    value &= 0xFFFFFFFFFFFF
    raw = "%012x" % value
    return ":".join(raw[i:i + 2] for i in range(0, 12, 2))
