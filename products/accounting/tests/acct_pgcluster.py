"""A throwaway PostgreSQL cluster from Debian's binaries (tests and bench).

initdb refuses to run as root, so as root the cluster runs as the
``postgres`` system user (runuser).  The cluster listens on 127.0.0.1 on a
free port with password (scram-sha-256) authentication, and is removed by
``stop()``.
"""

import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile


def pg_bindir():
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return os.path.dirname(found[-1]) if found else None


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PgCluster:
    def __init__(self, fsync=True):
        self.bindir = pg_bindir()
        if self.bindir is None:
            raise RuntimeError("PostgreSQL binaries not found (apt-get install postgresql)")
        self.tmp = tempfile.mkdtemp(prefix="acct-pg-")
        os.chmod(self.tmp, 0o755)
        self.data = os.path.join(self.tmp, "data")
        self.port = free_port()
        self.superpass = secrets.token_hex(12)
        self.password = secrets.token_hex(12)
        self.user, self.dbname = "accounting", "accounting"
        self.fsync = fsync
        self.started = False
        self._as = []
        if os.geteuid() == 0:
            pw = pwd.getpwnam("postgres")
            os.chown(self.tmp, pw.pw_uid, pw.pw_gid)
            self._as = ["runuser", "-u", "postgres", "--"]

    def _run(self, *cmd, env=None):
        proc = subprocess.run(self._as + list(cmd), capture_output=True, text=True, env=env, cwd=self.tmp)
        if proc.returncode:
            raise RuntimeError("%s failed: %s" % (cmd[0], (proc.stderr or proc.stdout)[-800:]))
        return proc.stdout

    def start(self):
        pwfile = os.path.join(self.tmp, "pw")
        with open(pwfile, "w") as fh:
            fh.write(self.superpass + "\n")
        if self._as:
            pw = pwd.getpwnam("postgres")
            os.chown(pwfile, pw.pw_uid, pw.pw_gid)
        os.chmod(pwfile, 0o600)
        self._run(os.path.join(self.bindir, "initdb"), "-D", self.data, "-U", "postgres",
                  "--auth=scram-sha-256", "--pwfile=" + pwfile, "-E", "UTF8", "--no-locale")
        os.unlink(pwfile)
        opts = "-p %d -k %s -c listen_addresses=127.0.0.1 -c shared_buffers=128MB" % (self.port, self.tmp)
        if not self.fsync:
            opts += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        self._run(os.path.join(self.bindir, "pg_ctl"), "-D", self.data, "-o", opts,
                  "-l", os.path.join(self.tmp, "log"), "-w", "-t", "60", "start")
        self.started = True
        self.psql("CREATE ROLE %s LOGIN PASSWORD '%s'" % (self.user, self.password))
        self.psql("CREATE DATABASE %s OWNER %s" % (self.dbname, self.user))
        return self

    def psql(self, sql, db="postgres"):
        env = dict(os.environ, PGPASSWORD=self.superpass)
        proc = subprocess.run([os.path.join(self.bindir, "psql"), "-h", "127.0.0.1", "-p", str(self.port),
                               "-U", "postgres", "-d", db, "-v", "ON_ERROR_STOP=1", "-qAt", "-c", sql],
                              capture_output=True, text=True, env=env)
        if proc.returncode:
            raise RuntimeError("psql: %s" % proc.stderr[-500:])
        return proc.stdout

    def kwargs(self):
        return {"host": "127.0.0.1", "port": self.port, "dbname": self.dbname,
                "user": self.user, "password": self.password}

    def stop(self):
        try:
            if self.started:
                self._run(os.path.join(self.bindir, "pg_ctl"), "-D", self.data, "-m", "fast", "-w", "stop")
                self.started = False
        finally:
            shutil.rmtree(self.tmp, ignore_errors=True)
