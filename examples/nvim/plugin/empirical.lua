-- :EmpiricalRun {environment} triggers a run and follows it to the end;
-- :EmpiricalStatus {id} shows where a run stands. Neither blocks the editor:
-- see lua/empirical_nvim.lua.
if vim.g.loaded_empirical then return end
vim.g.loaded_empirical = true

vim.api.nvim_create_user_command("EmpiricalRun", function(opts)
  require("empirical_nvim").run(opts.args)
end, { nargs = 1, desc = "Trigger an Empirical test run on an environment and follow it" })

vim.api.nvim_create_user_command("EmpiricalStatus", function(opts)
  require("empirical_nvim").status(opts.args)
end, { nargs = 1, desc = "Show an Empirical test run's state, counts and failed tests" })
