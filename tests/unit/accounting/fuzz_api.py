#!/usr/bin/env python3
"""Fuzz a running accounting API from its own OpenAPI document (schemathesis).

    fuzz_api.py --url https://HOST:PORT --user NAME --password-file FILE \
                [--ca CA.pem | --insecure] [--max-examples 40] [--seed 1]

Loads URL/v1/openapi.json, generates positive and negative requests for
every operation (bounded: --max-examples per operation, one worker) with
HTTP Basic credentials of a site LDAP user, and fails (exit != 0) on any
server error (5xx), an undocumented status code, a wrong content type or a
response that does not match the document.  Used by the unit tests
(tests/unit/accounting/test_fuzz.py) and by the accounting role's molecule
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


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--url", required=True)
    p.add_argument("--user", required=True)
    p.add_argument("--password-file", required=True)
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--ca")
    g.add_argument("--insecure", action="store_true")
    p.add_argument("--max-examples", type=int, default=40)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--report-dir")
    a = p.parse_args(argv)
    with open(a.password_file, encoding="utf-8") as fh:
        password = fh.readline().rstrip("\r\n")
    cmd = command(a.url, a.user, password, None if a.insecure else a.ca, a.max_examples, a.seed, a.report_dir)
    return subprocess.call(cmd)


if __name__ == "__main__":
    sys.exit(main())
