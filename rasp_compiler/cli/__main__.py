from rasp_compiler.cli import main

main()
