module smoltools.local/ollamarender

go 1.19
