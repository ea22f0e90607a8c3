"""forethought.examples: example code a user would write, shipped so that it can be run as is.

`forethought.examples.objectives`: test-time objectives over states for `forethought eval --objective`.
This package sits above every other layer: nothing in forethought imports it.
"""
