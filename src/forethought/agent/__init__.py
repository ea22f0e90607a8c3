"""forethought.agent"""
