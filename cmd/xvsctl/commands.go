package main

import "slices"

// commands are xvsctl's commands, in the order help lists them.
var commands = slices.Concat(portCommands, flowCommands, groupCommands, []command{statsCommand})
