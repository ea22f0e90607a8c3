"""forethought.planning"""
