" Vim/Neovim syntax for kvsl `.kvs` specs (the same scopes as editors/vscode's grammar).
if exists("b:current_syntax")
  finish
endif

syn match   kvsComment   "#.*$" contains=@Spell
syn region  kvsLongString start=+"""+ end=+"""+
syn region  kvsString    start=+"\(""\)\@!+ skip=+\\\\\|\\"+ end=+"\|$+ contains=kvsEscape oneline
syn match   kvsEscape    +\\\([\\"ntr0]\|u\x\{4}\|U\x\{8}\)+ contained
syn match   kvsNumber    "[+-]\=\<\d\+\(\.\d\+\)\=\([eE][+-]\=\d\+\)\=\>"
" after kvsNumber: at the same column the later match wins, so `1..4` is a range
syn match   kvsRange     "[+-]\=\<\d\+\.\.\([+-]\=\d\+\)\="
syn match   kvsKey       "\<[A-Za-z_][A-Za-z0-9_]*\>\ze\s*="
syn match   kvsBlock     "\<[A-Za-z_][A-Za-z0-9_]*\>\ze\s*\(\"[^\"]*\"\s*\|\[[^\]]*\]\s*\)\={"
syn match   kvsConstant  "=\s*\zs\<[A-Za-z_][A-Za-z0-9_]*\>"

hi def link kvsComment    Comment
hi def link kvsLongString String
hi def link kvsString     String
hi def link kvsEscape     SpecialChar
hi def link kvsRange      Number
hi def link kvsNumber     Number
hi def link kvsKey        Identifier
hi def link kvsBlock      Statement
hi def link kvsConstant   Constant

setlocal commentstring=#\ %s
let b:current_syntax = "kvs"
