"""The users of the test slapd (conftest.py starts it)."""

BASE_DN = "dc=acct,dc=test"
# carol: admin by posixGroup memberUid; dave: admin by groupOfNames member
USERS = {"alice": "alice-pw", "bob": "bob-pw", "carol": "carol-pw", "dave": "dave-pw"}
