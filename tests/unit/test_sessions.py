"""Who a client is, by address (collab.sessions.client_address)."""

from __future__ import annotations

import ipaddress

from collab.sessions import client_address

PROXIES = (ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("::1/128"))


def test_without_trusted_proxies_the_peer_is_the_client():
    assert client_address("10.0.0.5", "203.0.113.7", ()) == "10.0.0.5"


def test_a_peer_that_is_not_trusted_is_the_client_whatever_it_forwards():
    assert client_address("198.51.100.9", "203.0.113.7", PROXIES) == "198.51.100.9"


def test_behind_trusted_proxies_the_last_untrusted_hop_is_the_client():
    forwarded = "192.0.2.1, 203.0.113.7, 10.1.2.3"
    assert client_address("10.0.0.5", forwarded, PROXIES) == "203.0.113.7"


def test_a_forged_hop_cannot_name_the_client():
    # A client wrote garbage (or a newline) before the proxy appended its address.
    assert client_address("10.0.0.5", "evil\nline, 203.0.113.7", PROXIES) == "203.0.113.7"
    assert client_address("10.0.0.5", "203.0.113.7, not-an-ip", PROXIES) == "10.0.0.5"


def test_only_proxies_forwarded_means_the_peer():
    assert client_address("10.0.0.5", "10.9.9.9", PROXIES) == "10.0.0.5"
    assert client_address("::1", "", PROXIES) == "::1"
