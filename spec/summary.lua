-- busted output: the usual terminal report, then "N passed, N failed" as the
-- last line, which CI reads.
return function(options)
  local busted = require("busted")
  local handler = require("busted.outputHandlers.utfTerminal")(options)
  busted.subscribe({ "suite", "end" }, function()
    io.write(("%d passed, %d failed\n"):format(handler.successesCount,
                                               handler.failuresCount + handler.errorsCount))
    io.flush()
    return nil, true
  end)
  return handler
end
