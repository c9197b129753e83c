"""Exercise declarations, one module per chapter (`ch00`, `ch01`, ...).

Each module declares its exercises with `lmcourse.checks.Exercise`; importing it
registers them. Notebooks use `from lmcourse.exercises import ch00` and then
`ch00.stable_softmax.check(my_fn)`.
"""
