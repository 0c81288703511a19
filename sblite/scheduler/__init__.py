"""The task scheduler: tasks that run functions, publish messages or call URLs on a schedule."""
