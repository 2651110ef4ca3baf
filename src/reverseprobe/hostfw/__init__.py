"""Open the receive port in this PC's own firewall, and take out only what we added.

builders.py holds pure argv builders (nftables, iptables, ufw, firewalld, netsh,
socketfilterfw); apply.py decides which firewall to change from the firewall probe's reading
and runs the argv through one injected runner, so `--dry-run` prints exactly what would run.
Everything we add carries our mark (nftables/iptables/ufw comment, Windows rule name
"reverseprobe DICOM PORT"); firewalld and the macOS application firewall have no comments,
so what we added there is recorded in the state directory and removed only from that record.
"""
