// Network: bridge, veth, addresses, NAT and published ports over rtnetlink.
