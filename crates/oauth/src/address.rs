//! Which network addresses the authorization server may fetch from on a
//! stranger's behalf (client metadata documents): public unicast addresses
//! only. Every block of the IANA IPv4 and IPv6 Special-Purpose Address
//! Registries is refused, whatever its "globally reachable" column says
//! (a relay or translation prefix can still lead inside), as are multicast
//! and the reserved 240.0.0.0/4. IPv6 addresses that embed an IPv4 address
//! (mapped, compatible, NAT64, 6to4) are refused outright or judged as the
//! IPv4 address they carry, so no encoding of `127.0.0.1` gets through.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Whether `ip` is a public unicast address a server-side fetch may reach.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let bits = u32::from(ip);
    !SPECIAL_V4
        .iter()
        .any(|&(network, len)| prefix_matches_v4(bits, network, len))
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let bits = u128::from(ip);
    // ::ffff:a.b.c.d (mapped) and ::a.b.c.d (compatible, deprecated): the IPv4 rules decide,
    // and the compatible form is refused anyway (::/96 below).
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_public_v4(v4);
    }
    !SPECIAL_V6
        .iter()
        .any(|&(network, len)| prefix_matches_v6(bits, network, len))
}

fn prefix_matches_v4(bits: u32, network: u32, len: u32) -> bool {
    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
    bits & mask == network & mask
}

fn prefix_matches_v6(bits: u128, network: u128, len: u32) -> bool {
    let mask = if len == 0 {
        0
    } else {
        u128::MAX << (128 - len)
    };
    bits & mask == network & mask
}

const fn v4(a: u8, b: u8, c: u8, d: u8) -> u32 {
    u32::from_be_bytes([a, b, c, d])
}

/// IANA IPv4 Special-Purpose Address Registry, plus multicast and the
/// reserved and broadcast blocks (network, prefix length).
const SPECIAL_V4: [(u32, u32); 19] = [
    (v4(0, 0, 0, 0), 8),          // "this network" (RFC 791)
    (v4(10, 0, 0, 0), 8),         // private (RFC 1918)
    (v4(100, 64, 0, 0), 10),      // shared address space (RFC 6598)
    (v4(127, 0, 0, 0), 8),        // loopback
    (v4(169, 254, 0, 0), 16),     // link local
    (v4(172, 16, 0, 0), 12),      // private
    (v4(192, 0, 0, 0), 24), // IETF protocol assignments (incl. 192.0.0.0/29, .8, .9, .10, .170/31)
    (v4(192, 0, 2, 0), 24), // documentation (TEST-NET-1)
    (v4(192, 31, 196, 0), 24), // AS112-v4
    (v4(192, 52, 193, 0), 24), // AMT
    (v4(192, 88, 99, 0), 24), // deprecated 6to4 relay anycast
    (v4(192, 168, 0, 0), 16), // private
    (v4(192, 175, 48, 0), 24), // direct delegation AS112
    (v4(198, 18, 0, 0), 15), // benchmarking
    (v4(198, 51, 100, 0), 24), // documentation (TEST-NET-2)
    (v4(203, 0, 113, 0), 24), // documentation (TEST-NET-3)
    (v4(224, 0, 0, 0), 4),  // multicast
    (v4(240, 0, 0, 0), 4),  // reserved, and 255.255.255.255 broadcast
    (v4(255, 255, 255, 255), 32), // limited broadcast (inside 240/4; kept for clarity)
];

const fn v6(segments: [u16; 8]) -> u128 {
    let mut bits = 0u128;
    let mut i = 0;
    while i < 8 {
        bits = (bits << 16) | segments[i] as u128;
        i += 1;
    }
    bits
}

/// IANA IPv6 Special-Purpose Address Registry, plus multicast, link local,
/// site local and unique local (network, prefix length).
const SPECIAL_V6: [(u128, u32); 18] = [
    (v6([0, 0, 0, 0, 0, 0, 0, 0]), 96), // ::/96: unspecified, loopback, IPv4-compatible
    (v6([0, 0, 0, 0, 0, 0xffff, 0, 0]), 96), // IPv4-mapped (also judged as IPv4 above)
    (v6([0, 0, 0, 0, 0xffff, 0, 0, 0]), 96), // ::ffff:0:0:0/96 IPv4-translated (RFC 2765)
    (v6([0x64, 0xff9b, 0, 0, 0, 0, 0, 0]), 96), // IPv4/IPv6 translation (RFC 6052)
    (v6([0x64, 0xff9b, 1, 0, 0, 0, 0, 0]), 48), // local-use IPv4/IPv6 translation (RFC 8215)
    (v6([0x100, 0, 0, 0, 0, 0, 0, 0]), 64), // discard only (RFC 6666)
    (v6([0x100, 0, 0, 1, 0, 0, 0, 0]), 64), // dummy prefix (RFC 9780)
    (v6([0x2001, 0, 0, 0, 0, 0, 0, 0]), 23), // IETF protocol assignments (Teredo, ORCHID, ...)
    (v6([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0]), 32), // documentation
    (v6([0x2002, 0, 0, 0, 0, 0, 0, 0]), 16), // 6to4
    (v6([0x3fff, 0, 0, 0, 0, 0, 0, 0]), 20), // documentation (RFC 9637)
    (v6([0x5f00, 0, 0, 0, 0, 0, 0, 0]), 16), // segment routing SIDs (RFC 9602)
    (v6([0xfc00, 0, 0, 0, 0, 0, 0, 0]), 7), // unique local
    (v6([0xfe80, 0, 0, 0, 0, 0, 0, 0]), 10), // link local
    (v6([0xfec0, 0, 0, 0, 0, 0, 0, 0]), 10), // site local (deprecated)
    (v6([0xff00, 0, 0, 0, 0, 0, 0, 0]), 8), // multicast
    (v6([0x2620, 0x4f, 0x8000, 0, 0, 0, 0, 0]), 48), // direct delegation AS112
    (v6([0x2001, 0x4, 0x112, 0, 0, 0, 0, 0]), 48), // AS112-v6 (inside 2001::/23; kept for clarity)
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn special_purpose_addresses_are_refused() {
        for address in [
            "0.0.0.0",
            "0.1.2.3",
            "10.1.2.3",
            "100.64.0.1",
            "100.127.255.255",
            "127.0.0.1",
            "127.255.255.254",
            "169.254.169.254",
            "172.16.0.1",
            "172.31.255.255",
            "192.0.0.8",
            "192.0.0.170",
            "192.0.2.1",
            "192.31.196.1",
            "192.52.193.1",
            "192.88.99.1",
            "192.168.0.1",
            "192.175.48.1",
            "198.18.0.1",
            "198.19.255.255",
            "198.51.100.7",
            "203.0.113.9",
            "224.0.0.1",
            "239.255.255.255",
            "240.0.0.1",
            "250.1.2.3",
            "255.255.255.255",
            "::",
            "::1",
            "::127.0.0.1",
            "::8.8.8.8",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::ffff:0:127.0.0.1",
            "64:ff9b::7f00:1",
            "64:ff9b::808:808",
            "64:ff9b:1::1",
            "100::1",
            "100::1:0:0:1",
            "2001::1",
            "2001:1::1",
            "2001:2::1",
            "2001:10::1",
            "2001:20::1",
            "2001:1ff:ffff::1",
            "2001:db8::1",
            "2002:7f00:1::1",
            "2002:0808:0808::1",
            "3fff::1",
            "5f00::1",
            "fc00::1",
            "fd00::1",
            "fe80::1",
            "febf::1",
            "fec0::1",
            "ff02::1",
            "2620:4f:8000::1",
        ] {
            let ip: IpAddr = address.parse().unwrap();
            assert!(!is_public(ip), "{address} must be refused");
        }
    }

    #[test]
    fn public_addresses_are_allowed() {
        for address in [
            "1.1.1.1",
            "8.8.8.8",
            "93.184.216.34",
            "100.63.255.255",
            "100.128.0.1",
            "172.15.255.255",
            "172.32.0.1",
            "192.0.1.1",
            "198.17.255.255",
            "198.20.0.1",
            "223.255.255.254",
            "::ffff:8.8.8.8",
            "2606:2800:220:1::1",
            "2a00:1450:4001::1",
            "2001:200::1",
            "2003::1",
        ] {
            let ip: IpAddr = address.parse().unwrap();
            assert!(is_public(ip), "{address} must be allowed");
        }
    }
}
