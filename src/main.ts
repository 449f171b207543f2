// Placeholder entry; replaced by the dispatcher.
process.stderr.write("virt-hooks: not built yet\n");
