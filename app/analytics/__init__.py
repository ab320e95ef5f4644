"""Pure NumPy analytics core: no FastAPI, pandas, network or disk access.

Every public function takes arrays in and returns arrays (or frozen dataclasses of arrays)
out, validates its inputs at the top and raises :class:`ValueError` naming the argument.
The service layer turns those into :class:`app.core.errors.InvalidInput`.
"""
