"""forethought.evaluation"""
