"""StratusLab accounting: OpenNebula history records -> store -> HTTPS API, APEL export.

Runtime dependencies are Debian 12 packages only: python3, python3-psycopg2
(PostgreSQL store) and python3-ldap (API authentication).  See
docs/accounting.md in the project for the configuration and the rules.
"""

__version__ = "1.0.0"
