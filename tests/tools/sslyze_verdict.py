"""Fails (exit 1) on any finding in an sslyze JSON report: a protocol below
TLS 1.2 accepted, a TLS 1.2 suite that is not ECDHE with an AEAD, or a known
vulnerability (Heartbleed, CCS injection, ROBOT, insecure or
client-initiated renegotiation, TLS compression). Prints what it checked."""

import json
import sys

report = json.load(open(sys.argv[1]))
findings = []
checked = []
for server in report["server_scan_results"]:
    if server.get("scan_status") != "COMPLETED":
        findings.append(f"scan did not complete: {server.get('connectivity_error_trace')}")
        continue
    result = server["scan_result"]

    def attempt(name):
        entry = result.get(name) or {}
        if entry.get("status") != "COMPLETED":
            findings.append(f"{name}: scan command did not complete ({entry.get('error_reason')})")
            return None
        return entry["result"]

    for old in ["ssl_2_0_cipher_suites", "ssl_3_0_cipher_suites",
                "tls_1_0_cipher_suites", "tls_1_1_cipher_suites"]:
        got = attempt(old)
        if got is not None:
            checked.append(old)
            if got["accepted_cipher_suites"]:
                findings.append(f"{old}: accepted {len(got['accepted_cipher_suites'])} suites")
    for modern in ["tls_1_2_cipher_suites", "tls_1_3_cipher_suites"]:
        got = attempt(modern)
        if got is None:
            continue
        names = [s["cipher_suite"]["name"] for s in got["accepted_cipher_suites"]]
        checked.append(f"{modern}: {', '.join(names)}")
        if not names:
            findings.append(f"{modern}: nothing accepted")
        for name in names:
            aead = "GCM" in name or "CHACHA20" in name
            forward_secret = name.startswith("TLS_AES") or name.startswith("TLS_CHACHA20") or "ECDHE" in name
            if not (aead and forward_secret):
                findings.append(f"{modern}: weak suite {name}")
    checks = {
        "heartbleed": lambda r: r["is_vulnerable_to_heartbleed"],
        "openssl_ccs_injection": lambda r: r["is_vulnerable_to_ccs_injection"],
        "robot": lambda r: not r["robot_result"].startswith("NOT_VULNERABLE"),
        "session_renegotiation": lambda r: r["is_vulnerable_to_client_renegotiation_dos"]
        or not r["supports_secure_renegotiation"] and r.get("accepts_client_renegotiation", False),
        "tls_compression": lambda r: r["supports_compression"],
    }
    for name, vulnerable in checks.items():
        got = attempt(name)
        if got is not None:
            checked.append(name)
            if vulnerable(got):
                findings.append(f"{name}: vulnerable ({json.dumps(got)[:200]})")

for line in checked:
    print(f"  checked {line}")
if findings:
    for finding in findings:
        print(f"  FINDING {finding}")
    sys.exit(1)
print("  sslyze: no finding")
