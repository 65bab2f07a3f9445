-- :Empirical {subcommand}: Empirical test runs from Neovim (:help empirical).
-- Only the command is defined here; the module and its C core load on first use.
if vim.g.loaded_empirical then return end
vim.g.loaded_empirical = true

if vim.fn.has("nvim-0.7") == 0 then
  vim.api.nvim_err_writeln("empirical: needs Neovim 0.7 or later")
  return
end

vim.api.nvim_create_user_command("Empirical", function(opts)
  require("empirical.nvim").command(opts.fargs)
end, {
  nargs = "*",
  desc = "Empirical test runs: run, rerun, status, cancel, list, report, stop",
  complete = function(lead, line, pos) return require("empirical.nvim").complete(lead, line, pos) end,
})
