"""Mends to third-party libraries, each written against named versions of them.

One subpackage per library (:mod:`app.compat.faust` for faust-streaming). A mend replaces methods
of the library's classes in place, so it checks the installed version first and refuses to install
on any other: a new release may have fixed the problem, or moved the code the mend copies.
"""
