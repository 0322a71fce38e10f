#!/usr/bin/env python3
"""Fuzz a running accounting API from its own OpenAPI document (schemathesis).

    fuzz_api.py --url https://HOST:PORT --user NAME --password-file FILE \
                [--ca CA.pem | --insecure] [--max-examples 40] [--seed 1]

or start a local API first (SQLite store in a temporary directory, seeded
with the reference captures when --samples is given; TLS with the given
certificate; authentication against the given LDAP), then fuzz it:

    fuzz_api.py --serve --tls-cert C --tls-key K --ca CA.pem \
                --ldap-uri ldaps://ldap.example.org --ldap-ca LDAPCA.pem \
                --ldap-user-dn 'uid={user},ou=people,dc=example,dc=org' \
                [--ldap-group-base ou=groups,... --admin-group G] [--samples DIR] \
                --user NAME --password-file FILE

Loads URL/v1/openapi.json, generates positive and negative requests for
every operation (bounded: --max-examples per operation, one worker) with
HTTP Basic credentials of a site LDAP user, and fails (exit != 0) on any
server error (5xx), an undocumented status code, a wrong content type or a
response that does not match the document.  Used by the unit tests
(products/accounting/tests/test_fuzz.py) and by the accounting role's molecule
scenario against the deployed service.  The password is read from a file;
schemathesis gets it on its command line (a test account only).
"""

import argparse
import os
import shutil
import subprocess
import sys

CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"


def command(url, user, password, ca=None, max_examples=40, seed=1, report_dir=None):
    exe = shutil.which("schemathesis") or os.path.join(os.path.dirname(sys.executable), "schemathesis")
    cmd = [exe, "run", url.rstrip("/") + "/v1/openapi.json", "--url", url.rstrip("/"),
           "--auth", "%s:%s" % (user, password), "--tls-verify", ca or "false",
           "--max-examples", str(max_examples), "--seed", str(seed), "--workers", "1",
           "--checks", CHECKS, "--generation-database", "none", "--no-color",
           "--phases", "examples,coverage,fuzzing", "--request-timeout", "20"]
    if report_dir:
        cmd += ["--report", "junit", "--report-dir", report_dir]
    return cmd


def serve_local(a):
    """Start the API in this process; return (server, url)."""
    import tempfile
    import threading
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path.insert(0, os.path.join(here, "..", "src"))
    from stratuslab_accounting.api import Server, tls_context
    from stratuslab_accounting.auth import LdapAuthenticator
    from stratuslab_accounting.records import parse_history_records
    from stratuslab_accounting.store import SQLiteStore
    workdir = tempfile.mkdtemp(prefix="acct-fuzz-")
    store = SQLiteStore(os.path.join(workdir, "acct.sqlite"))
    store.migrate()
    if a.samples:
        name = next(n for n in sorted(os.listdir(a.samples)) if n.startswith("055_") and n.endswith(".payload.xml"))
        with open(os.path.join(a.samples, name), encoding="utf-8") as fh:
            store.upsert(parse_history_records(fh.read()))
    auth = LdapAuthenticator(a.ldap_uri, a.ldap_user_dn, a.ldap_ca or "", a.ldap_group_base or "",
                             a.admin_group or "", timeout=10)
    server = Server(("127.0.0.1", 0), store, auth, tls_context(a.tls_cert, a.tls_key))
    server.workdir = workdir
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, "https://127.0.0.1:%d" % server.server_address[1]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--url")
    p.add_argument("--serve", action="store_true", help="start a local API (SQLite) and fuzz it")
    p.add_argument("--tls-cert")
    p.add_argument("--tls-key")
    p.add_argument("--ldap-uri")
    p.add_argument("--ldap-ca")
    p.add_argument("--ldap-user-dn")
    p.add_argument("--ldap-group-base")
    p.add_argument("--admin-group")
    p.add_argument("--samples", help="samples-accounting-7.4.0 directory to seed the store")
    p.add_argument("--user", required=True)
    p.add_argument("--password-file", required=True)
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--ca")
    g.add_argument("--insecure", action="store_true")
    p.add_argument("--max-examples", type=int, default=40)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--report-dir")
    a = p.parse_args(argv)
    if a.serve == bool(a.url):
        p.error("give either --url or --serve")
    if a.serve and not (a.tls_cert and a.tls_key and a.ldap_uri and a.ldap_user_dn):
        p.error("--serve needs --tls-cert, --tls-key, --ldap-uri and --ldap-user-dn")
    with open(a.password_file, encoding="utf-8") as fh:
        password = fh.readline().rstrip("\r\n")
    server = None
    url = a.url
    if a.serve:
        server, url = serve_local(a)
    try:
        cmd = command(url, a.user, password, None if a.insecure else a.ca, a.max_examples, a.seed, a.report_dir)
        return subprocess.call(cmd)
    finally:
        if server is not None:
            server.shutdown()
            server.server_close()
            shutil.rmtree(server.workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
