" kvsl specs: *.kvs
autocmd BufRead,BufNewFile *.kvs setfiletype kvs
