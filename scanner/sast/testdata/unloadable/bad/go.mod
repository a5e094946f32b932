module example.com/bad

require (
