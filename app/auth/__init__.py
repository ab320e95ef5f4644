"""Users, password hashing, access tokens and the login throttle of the margin API."""
