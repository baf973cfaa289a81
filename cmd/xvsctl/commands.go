package main

import "slices"

// commands are xvsctl's commands, in the order help lists them.
var commands = slices.Concat(portCommands, eventCommands[:1], flowCommands, groupCommands, []command{traceCommand, statsCommand}, eventCommands[1:])
